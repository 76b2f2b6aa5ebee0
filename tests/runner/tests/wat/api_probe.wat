;; A hand-written Wasm API Function that exercises every import the trampoline rewires, so the
;; runner's tests check the trampoline, the provider protocol and the fuel model without depending
;; on any Rust Function. Strings live at fixed addresses of its own memory.
(module
  (import "shopify_function_v2" "shopify_function_input_get" (func $input_get (result i64)))
  (import "shopify_function_v2" "shopify_function_input_get_obj_prop" (func $get_obj_prop (param i64 i32 i32) (result i64)))
  (import "shopify_function_v2" "shopify_function_input_get_interned_obj_prop" (func $get_interned_obj_prop (param i64 i32) (result i64)))
  (import "shopify_function_v2" "shopify_function_input_get_val_len" (func $val_len (param i64) (result i32)))
  (import "shopify_function_v2" "shopify_function_input_read_utf8_str" (func $read_str (param i32 i32 i32)))
  (import "shopify_function_v2" "shopify_function_intern_utf8_str" (func $intern (param i32 i32) (result i32)))
  (import "shopify_function_v2" "shopify_function_output_new_object" (func $new_object (param i32) (result i32)))
  (import "shopify_function_v2" "shopify_function_output_finish_object" (func $finish_object (result i32)))
  (import "shopify_function_v2" "shopify_function_output_new_utf8_str" (func $new_str (param i32 i32) (result i32)))
  (import "shopify_function_v2" "shopify_function_output_new_interned_utf8_str" (func $new_interned_str (param i32) (result i32)))
  (import "shopify_function_v2" "shopify_function_output_new_i32" (func $new_i32 (param i32) (result i32)))
  (import "shopify_function_v2" "shopify_function_log_new_utf8_str" (func $log (param i32 i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "name")
  (data (i32.const 32) "greeting")
  (data (i32.const 48) "items")
  (data (i32.const 64) "ran")

  ;; {"greeting": input.name, "items": len(input.items)}, logging "ran".
  (func (export "run")
    (local $input i64) (local $name i64) (local $len i32) (local $items_key i32)
    call $input_get
    local.set $input
    ;; name: looked up by a name passed through memory, then copied into memory at 256.
    local.get $input
    i32.const 16
    i32.const 4
    call $get_obj_prop
    local.tee $name
    call $val_len
    local.set $len
    local.get $name
    i32.wrap_i64
    i32.const 256
    local.get $len
    call $read_str
    ;; items: looked up by an interned name, which is also written as an output key.
    i32.const 48
    i32.const 5
    call $intern
    local.set $items_key
    i32.const 2
    call $new_object
    drop
    i32.const 32
    i32.const 8
    call $new_str
    drop
    i32.const 256
    local.get $len
    call $new_str
    drop
    local.get $items_key
    call $new_interned_str
    drop
    local.get $input
    local.get $items_key
    call $get_interned_obj_prop
    call $val_len
    call $new_i32
    drop
    call $finish_object
    drop
    i32.const 64
    i32.const 3
    call $log)

  ;; 1000 iterations of 5 counted operators plus 2 to set up: exactly 5002 more than "empty".
  (func (export "spin")
    (local $i i32)
    i32.const 1000
    local.set $i
    loop $again
      local.get $i
      i32.const 1
      i32.sub
      local.tee $i
      br_if $again
    end
    call $empty_output)

  ;; One 60,000-byte memory.copy: exactly 4 more than "empty" (no per-byte charge).
  (func (export "copy")
    i32.const 0
    i32.const 1000
    i32.const 60000
    memory.copy
    call $empty_output)

  ;; Logs 1,200 bytes: more than the 1,000-byte log limit.
  (func (export "shout")
    i32.const 1024
    i32.const 1200
    call $log
    call $empty_output)

  ;; Only the empty output: the baseline the other exports are measured against.
  (func (export "empty")
    call $empty_output)

  (func (export "trap")
    unreachable)

  (func $empty_output
    i32.const 0
    call $new_object
    drop
    call $finish_object
    drop))
