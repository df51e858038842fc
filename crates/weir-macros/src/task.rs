//! Expansion of `#[task]`.
//!
//! ```ignore
//! #[task(retries = 3, retry_delay = "2s")]
//! async fn extract(url: String) -> anyhow::Result<Vec<Row>> { ... }
//! ```
//! becomes a static `TaskDef` (registered with `inventory` for `describe`) and
//! `fn extract(url: String) -> weir::TaskCall<impl Future<Output = anyhow::Result<Vec<Row>>>>`
//! whose body takes the call's place in the flow run synchronously (call index, ids,
//! fingerprint) and returns the lazily running call.

use crate::options::TaskOptions;
use crate::{options, signature};
use proc_macro2::TokenStream;
use quote::{format_ident, quote};
use syn::{Ident, ItemFn};

pub fn expand(args: TokenStream, item: TokenStream) -> syn::Result<TokenStream> {
    let opts = options::parse_task(args)?;
    let f: ItemFn = syn::parse2(item)?;
    let sig = signature::analyse(&f, "task")?;
    reject_argument_attributes(&sig)?;
    let vis = &f.vis;
    let ident = &f.sig.ident;
    let fn_name = ident.to_string();
    let name = opts.name.clone().unwrap_or_else(|| fn_name.clone());
    let def = format_ident!("__WEIR_TASK_{}", ident);
    let docs = &sig.docs;
    let other_attrs = &sig.other_attrs;
    let block = &f.block;
    let ret = &sig.ret;
    let ok = &sig.ok;
    let outer_params = sig.params(false);
    let inner_params = sig.params(true);
    let idents = sig.idents();
    let def_value = task_def(&opts, &name, &fn_name, &sig.doc_text);
    let key_call = cache_key_call(&opts, &idents);
    let run = attempts(
        opts.retries,
        &idents,
        sig.outcome(quote!(__weir_body(#(#idents),*))),
    );

    Ok(quote! {
        #[doc(hidden)]
        #[allow(non_upper_case_globals)]
        #vis static #def: ::weir::TaskDef = #def_value;

        ::weir::__private::inventory::submit! {
            ::weir::__private::TaskRegistration(&#def)
        }

        #(#docs)*
        #[allow(clippy::too_many_arguments)]
        #vis fn #ident(#(#outer_params),*) -> ::weir::TaskCall<
            impl ::core::future::Future<Output = ::weir::__private::anyhow::Result<#ok>>
                + ::core::marker::Send
                + 'static,
        > {
            #(#other_attrs)*
            #[allow(clippy::too_many_arguments)]
            async fn __weir_body(#(#inner_params),*) -> #ret #block

            let mut __weir_start = ::weir::__private::TaskStart::begin(&#def);
            if __weir_start.wants_fingerprint() {
                __weir_start.set_fingerprint(&(#(&#idents,)*));
            }
            #key_call
            ::weir::TaskCall::new({ #run })
        }
    })
}

/// A task's arguments are its fingerprint and its retries' clones: attributes on them
/// (which would change either) are a compile error.
fn reject_argument_attributes(sig: &signature::Signature) -> syn::Result<()> {
    match sig.args.iter().find_map(|a| a.attrs.first()) {
        Some(attr) => Err(syn::Error::new_spanned(
            attr,
            "task arguments take no attributes",
        )),
        None => Ok(()),
    }
}

/// The `TaskDef` value the task's static holds: its name, description and every option
/// (durations as nanoseconds; a task without `max_delay` waits at most an hour).
fn task_def(opts: &TaskOptions, name: &str, fn_name: &str, doc_text: &str) -> TokenStream {
    let retries = opts.retries;
    let delay = opts.retry_delay_ns;
    let backoff = opts.backoff;
    let jitter = opts.jitter;
    let max_delay = opts.max_delay_ns.unwrap_or(3_600_000_000_000);
    let timeout = optional_duration(opts.timeout_ns);
    let cache_expiration = optional_duration(opts.cache_expiration_ns);
    let retry_if = match &opts.retry_if {
        Some(p) => {
            quote!(::core::option::Option::Some(#p as fn(&::weir::__private::anyhow::Error) -> bool))
        }
        None => quote!(::core::option::Option::None),
    };
    let cache = opts.cache;
    let custom_key = opts.cache_key.is_some();
    let persist = opts.persist_result;
    let fingerprint = opts.fingerprint;
    let tags = &opts.tags;
    quote! {
        ::weir::TaskDef {
            name: #name,
            fn_name: #fn_name,
            module: ::core::module_path!(),
            description: #doc_text,
            retry: ::weir::__private::RetryPolicy {
                retries: #retries,
                delay: ::core::time::Duration::from_nanos(#delay),
                backoff: #backoff,
                max_delay: ::core::time::Duration::from_nanos(#max_delay),
                jitter: #jitter,
            },
            retry_if: #retry_if,
            timeout: #timeout,
            cache: #cache,
            custom_cache_key: #custom_key,
            cache_expiration: #cache_expiration,
            persist_result: #persist,
            fingerprint: #fingerprint,
            tags: &[#(#tags),*],
        }
    }
}

/// `Option<Duration>` tokens for an optional option given in nanoseconds.
fn optional_duration(ns: Option<u64>) -> TokenStream {
    match ns {
        Some(ns) => quote!(::core::option::Option::Some(::core::time::Duration::from_nanos(#ns))),
        None => quote!(::core::option::Option::None),
    }
}

/// With `cache_key = path`: the call to the user's key function over the arguments, made only
/// when the run wants a key (nothing without the option).
fn cache_key_call(opts: &TaskOptions, idents: &[&Ident]) -> Option<TokenStream> {
    opts.cache_key.as_ref().map(|p| {
        quote! {
            if __weir_start.wants_cache_key() {
                let __weir_key: ::std::string::String = #p(#(&#idents),*);
                __weir_start.set_cache_key(__weir_key);
            }
        }
    })
}

/// The closure `TaskStart::run` calls once per attempt. With retries the body may run several
/// times: each attempt gets clones of the arguments. Without, the arguments are moved into the
/// one attempt.
fn attempts(retries: u32, idents: &[&Ident], outcome: TokenStream) -> TokenStream {
    if retries > 0 {
        let clones = idents
            .iter()
            .map(|i| quote!(let #i = ::core::clone::Clone::clone(&#i);));
        quote! {
            __weir_start.run(move || {
                #(#clones)*
                #outcome
            })
        }
    } else {
        quote! {
            let mut __weir_args = ::core::option::Option::Some((#(#idents,)*));
            __weir_start.run(move || {
                let __weir_taken = __weir_args.take();
                async move {
                    match __weir_taken {
                        ::core::option::Option::Some((#(#idents,)*)) => #outcome.await,
                        ::core::option::Option::None => ::weir::__private::body_reused(),
                    }
                }
            })
        }
    }
}
