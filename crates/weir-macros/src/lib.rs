//! Procedural macros of the Weir SDK.
//!
//! * `#[task(...)]` turns an `async fn` into a tracked task: calling it returns a
//!   `weir::TaskCall` (await it to run, `.submit()` to run concurrently).
//! * `#[flow(...)]` turns an `async fn` into a flow: typed parameters with a JSON Schema, a flow
//!   run per call (a subflow when called from another flow).
//! * `main!(flow, ...)` writes the `main` of a flows binary (`describe`, `run`).
//!
//! The generated code only names paths under `::weir`, so user crates depend on `weir` alone.

use proc_macro::TokenStream;

mod flow;
mod options;
mod signature;
mod task;

/// Marks an `async fn` as a Weir task. See the `weir` crate documentation for the options.
#[proc_macro_attribute]
pub fn task(args: TokenStream, item: TokenStream) -> TokenStream {
    task::expand(args.into(), item.into())
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}

/// Marks an `async fn` as a Weir flow. See the `weir` crate documentation for the options.
#[proc_macro_attribute]
pub fn flow(args: TokenStream, item: TokenStream) -> TokenStream {
    flow::expand(args.into(), item.into())
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}

/// Writes `fn main` of a flows binary serving the listed flows: `main!(etl, chain)`.
#[proc_macro]
pub fn main(input: TokenStream) -> TokenStream {
    flow::expand_main(input.into())
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}
