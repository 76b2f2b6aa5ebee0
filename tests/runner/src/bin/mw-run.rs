//! `mw-run`: replay Function runs through wasm like Shopify, turn logged runs into fixtures, and
//! print the budget table. See the `wasm-runner` crate docs for how a run is measured.

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use wasm_runner::project::{Fixture, Project};
use wasm_runner::report::{render_functions, render_profile, render_run, render_table};
use wasm_runner::{Runner, budget, bundle_carts, carts};

#[derive(Parser)]
#[command(
    name = "mw-run",
    about = "Run marginwise's Shopify Functions as wasm, measured like Shopify"
)]
struct Cli {
    /// The marginwise checkout (default: found from the current folder upwards).
    #[arg(long, global = true)]
    root: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Replay a run-log payload file (`{"payload": {"export","target","input","output"}}`) and
    /// print the report; fails on any exceeded limit or an output that differs from the recorded one.
    Run {
        fixture: PathBuf,
        /// Print the report as JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Turn a run copied from `shopify app logs` into tests/fixtures/<handle>/<name>.json.
    Fixture {
        /// A file holding the log entry (one JSON object with `payload`), or JSON lines.
        log: PathBuf,
        /// The fixture's file name, without `.json`.
        name: String,
        /// Which line to take when the file holds several JSON lines (1-based).
        #[arg(long)]
        line: Option<usize>,
        /// Overwrite an existing fixture.
        #[arg(long)]
        force: bool,
    },
    /// Run a module file directly: `mw-run wasm <module.wasm> <export> <input.json>`.
    Wasm {
        module: PathBuf,
        export: String,
        input: PathBuf,
        /// Also print instructions per function of the module (build it with
        /// `CARGO_PROFILE_WASM_STRIP=false` to keep the names); the counts include a few
        /// instructions of instrumentation per call.
        #[arg(long)]
        functions: bool,
    },
    /// Where the instructions go: runs one budget cart (or a fixture) through the offers or bundles
    /// Function and its read floor, and splits each count into provider exports and the Function's own code.
    Profile {
        /// Cart lines of the generated budget cart.
        #[arg(long, default_value_t = 200)]
        lines: u64,
        /// `lines` or `delivery` target of the offers Function, or `bundles` for the cart
        /// transform (on a bundles budget cart).
        #[arg(long, default_value = "lines")]
        target: String,
        /// Profile this fixture instead of a budget cart.
        #[arg(long)]
        fixture: Option<PathBuf>,
    },
    /// Print the generated budget cart of N lines as JSON (the offers input, or with
    /// `--function bundles` the cart transform's).
    Cart {
        lines: u64,
        /// `offers` or `bundles`.
        #[arg(long, default_value = "offers")]
        function: String,
        /// Bundles defined in the store of a bundles cart (at most 133 fit in one metafield).
        #[arg(long, default_value_t = bundle_carts::BUDGET_BUNDLES)]
        bundles: u64,
    },
    /// Print the budget table over every fixture and the generated budget carts.
    Report {
        /// Rewrite tests/budgets/ceilings.toml with the measured figures.
        #[arg(long)]
        rewrite_ceilings: bool,
    },
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("mw-run: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn project(root: Option<&Path>) -> Result<Project> {
    match root {
        Some(root) => Project::discover(root),
        None => Project::discover(&std::env::current_dir().context("reading the current folder")?),
    }
    .context("finding the marginwise checkout")
}

fn run(cli: Cli) -> Result<ExitCode> {
    let project = project(cli.root.as_deref())?;
    match cli.command {
        Command::Run { fixture, json } => run_fixture(project, &fixture, json),
        Command::Fixture {
            log,
            name,
            line,
            force,
        } => make_fixture(project, &log, &name, line, force),
        Command::Wasm {
            module,
            export,
            input,
            functions,
        } => run_wasm(project, &module, &export, &input, functions),
        Command::Report { rewrite_ceilings } => report(project, rewrite_ceilings),
        Command::Cart {
            lines,
            function,
            bundles,
        } => {
            let input = match function.as_str() {
                "offers" => carts::budget_input(lines),
                "bundles" => bundle_carts::bundles_input(lines, bundles),
                other => bail!("--function must be `offers` or `bundles`, not `{other}`"),
            };
            println!("{}", serde_json::to_string_pretty(&input)?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Profile {
            lines,
            target,
            fixture,
        } => profile(project, lines, &target, fixture.as_deref()),
    }
}

fn run_fixture(project: Project, path: &Path, json: bool) -> Result<ExitCode> {
    let fixture = Fixture::load(path)?;
    let runner = Runner::new(project)?;
    let report = runner.run_fixture(&fixture)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", render_run(&path.display().to_string(), &report));
    }
    let mut ok = report.check_limits().is_ok();
    match &fixture.output {
        Some(expected) if *expected != report.output => {
            eprintln!(
                "{}: the wasm output differs from `payload.output`:\nexpected: {}\nactual:   {}",
                path.display(),
                serde_json::to_string(expected)?,
                serde_json::to_string(&report.output)?
            );
            ok = false;
        }
        Some(_) => println!("output         equals payload.output"),
        None => println!("output         (fixture records none)"),
    }
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn read_log_entry(log: &Path, line: Option<usize>) -> Result<Value> {
    let text =
        std::fs::read_to_string(log).with_context(|| format!("reading {}", log.display()))?;
    if line.is_none()
        && let Ok(document) = serde_json::from_str::<Value>(&text)
    {
        return Ok(document);
    }
    let lines: Vec<(usize, &str)> = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| (i.saturating_add(1), l))
        .collect();
    let (number, chosen) = match (line, lines.as_slice()) {
        (Some(wanted), _) => lines
            .iter()
            .find(|(number, _)| *number == wanted)
            .copied()
            .with_context(|| format!("{}: no line {wanted}", log.display()))?,
        (None, [only]) => *only,
        (None, []) => bail!("{}: the file is empty", log.display()),
        (None, _) => bail!(
            "{}: not one JSON document but {} lines; pick one with --line N",
            log.display(),
            lines.len()
        ),
    };
    serde_json::from_str(chosen)
        .with_context(|| format!("{}:{number}: not valid JSON", log.display()))
}

fn make_fixture(
    project: Project,
    log: &Path,
    name: &str,
    line: Option<usize>,
    force: bool,
) -> Result<ExitCode> {
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        bail!("fixture name `{name}` must be letters, digits, `-` or `_`");
    }
    let entry = read_log_entry(log, line)?;
    let mut fixture = Fixture::from_log_entry(log, &entry)?;
    let extension = project.extension_for(&fixture.target, &fixture.export)?;
    let destination = project
        .root
        .join("tests")
        .join("fixtures")
        .join(&extension.handle)
        .join(format!("{name}.json"));
    if destination.exists() && !force {
        bail!(
            "{} already exists (use --force to overwrite)",
            destination.display()
        );
    }
    let runner = Runner::new(project)?;
    let report = runner.run_fixture(&fixture)?;
    match &fixture.output {
        None => {
            println!("the log has no output: recording the wasm run's output");
            fixture.output = Some(report.output.clone());
        }
        Some(logged) if *logged != report.output => {
            println!(
                "note: the wasm output differs from the logged output; the fixture keeps the logged one \
                 so the regression test shows the difference"
            );
        }
        Some(_) => {}
    }
    if let Some(parent) = destination.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    let mut text = serde_json::to_string_pretty(&fixture.to_document())?;
    text.push('\n');
    std::fs::write(&destination, text)
        .with_context(|| format!("writing {}", destination.display()))?;
    print!(
        "{}",
        render_run(&destination.display().to_string(), &report)
    );
    println!("wrote {}", destination.display());
    Ok(ExitCode::SUCCESS)
}

fn run_wasm(
    project: Project,
    module: &Path,
    export: &str,
    input: &Path,
    functions: bool,
) -> Result<ExitCode> {
    let wasm = std::fs::read(module).with_context(|| format!("reading {}", module.display()))?;
    let text =
        std::fs::read_to_string(input).with_context(|| format!("reading {}", input.display()))?;
    let input_value: Value = serde_json::from_str(&text)
        .with_context(|| format!("{}: not valid JSON", input.display()))?;
    let runner = Runner::new(project)?;
    let what = module.display().to_string();
    if functions {
        let loaded = runner.load_wasm_instrumented(&wasm, &what)?;
        let report = runner.run_module_profiled(
            &loaded,
            export,
            &input_value,
            &input.display().to_string(),
        )?;
        print!("{}", render_profile(&what, &report));
        print!("{}", render_functions(&report, 40));
        return Ok(ExitCode::SUCCESS);
    }
    let loaded = runner.load_wasm(&wasm, &what)?;
    let report = runner.run_module(&loaded, export, &input_value, &input.display().to_string())?;
    print!("{}", render_run(&what, &report));
    Ok(if report.check_limits().is_ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn report(project: Project, rewrite_ceilings: bool) -> Result<ExitCode> {
    let runner = Runner::new(project)?;
    let rows = budget::measure_all(&runner)?;
    let command_line = std::iter::once("mw-run".to_owned())
        .chain(std::env::args().skip(1))
        .collect::<Vec<_>>()
        .join(" ");
    print!("{}", render_table(&rows, &command_line));
    if rewrite_ceilings {
        let path = budget::write_ceilings(&runner.project.root, &rows)?;
        println!("wrote {}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}

fn profile(project: Project, lines: u64, target: &str, fixture: Option<&Path>) -> Result<ExitCode> {
    let runner = Runner::new(project)?;
    if let Some(path) = fixture {
        let fixture = Fixture::load(path)?;
        let (_, module) = runner.function_for(&fixture.target, &fixture.export)?;
        let report = runner.run_module_profiled(
            &module,
            &fixture.export,
            &fixture.input,
            &path.display().to_string(),
        )?;
        print!("{}", render_profile(&path.display().to_string(), &report));
        return Ok(ExitCode::SUCCESS);
    }
    if target == "bundles" {
        let (bundles, floor) = bundle_carts::bundles_and_floor(&runner)?
            .context("no extension under extensions/ serves cart.transform.run")?;
        let (_, export) = bundle_carts::BUNDLES_TARGET;
        let input = bundle_carts::bundles_input(lines, bundle_carts::BUDGET_BUNDLES);
        for (extension, name) in [
            (bundles, bundle_carts::budget_name(lines)),
            (floor, bundle_carts::floor_name(lines)),
        ] {
            let module = runner.extension_module(&extension)?;
            let report = runner.run_module_profiled(&module, export, &input, &name)?;
            print!("{}", render_profile(&name, &report));
        }
        return Ok(ExitCode::SUCCESS);
    }
    let (_, export) = carts::OFFERS_TARGETS
        .into_iter()
        .find(|(_, export)| carts::export_short(export) == target)
        .with_context(|| {
            format!("--target must be `lines`, `delivery` or `bundles`, not `{target}`")
        })?;
    let (offers, floor) = carts::offers_and_floor(&runner)?
        .context("no extension under extensions/ serves the offers targets")?;
    let input = carts::budget_input(lines);
    for (extension, name) in [
        (offers, carts::budget_name(export, lines)),
        (floor, carts::floor_name(export, lines)),
    ] {
        let module = runner.extension_module(&extension)?;
        let report = runner.run_module_profiled(&module, export, &input, &name)?;
        print!("{}", render_profile(&name, &report));
    }
    Ok(ExitCode::SUCCESS)
}
