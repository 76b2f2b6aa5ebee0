//! An exclusive advisory lock on a folder, taken on the folder itself (no lock file is left
//! behind to name and remove).
//!
//! Every writer that replaces a file in a plan or export folder holds it while it does: the
//! privacy webhook's rewrites (`customers/redact` reads a file, writes a copy without the
//! customer and renames it over the file), `score`'s renames of a new plan, `export`'s rename of
//! each file it completes, and `marginwise refresh`'s swap of a new export. Without it a redaction that opened the old file could
//! rename its copy over the new one (losing it), and two rewrites could share one temporary.
//! Readers (`score`, `apply`) do not take it: a rename never shows them half a file.

use std::fs::File;
use std::path::Path;

/// Held until dropped; released by the kernel if the process dies.
#[derive(Debug)]
pub struct FolderLock {
    _folder: File,
}

/// Waits for the lock on `dir`. `None` when the folder does not exist (there is nothing in it to
/// replace).
pub fn lock(dir: &Path) -> std::io::Result<Option<FolderLock>> {
    let folder = match File::open(dir) {
        Ok(folder) => folder,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(error),
    };
    folder.lock()?;
    Ok(Some(FolderLock { _folder: folder }))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;

    #[test]
    fn a_second_holder_waits_until_the_first_lets_go() {
        let dir = tempfile::tempdir().unwrap();
        let first = lock(dir.path()).unwrap().unwrap();
        let (sender, receiver) = std::sync::mpsc::channel();
        let path = dir.path().to_path_buf();
        let waiter = std::thread::spawn(move || {
            let second = lock(&path).unwrap();
            sender.send(()).unwrap();
            drop(second);
        });
        assert!(
            receiver
                .recv_timeout(std::time::Duration::from_millis(300))
                .is_err(),
            "the second lock was taken while the first was held"
        );
        drop(first);
        receiver
            .recv_timeout(std::time::Duration::from_secs(10))
            .unwrap();
        waiter.join().unwrap();
        assert!(lock(&dir.path().join("missing")).unwrap().is_none());
    }
}
