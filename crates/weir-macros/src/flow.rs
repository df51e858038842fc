//! Expansion of `#[flow]` and `main!`.
//!
//! A flow `async fn etl(rows: u32) -> anyhow::Result<Summary>` becomes:
//! * a parameters struct deriving `Deserialize + JsonSchema` (`deny_unknown_fields`), whose
//!   schema `describe` prints;
//! * a static `FlowDef` named `__WEIR_FLOW_etl` (found by `main!`), with a function that
//!   validates a JSON object of parameters field by field and starts the run;
//! * `fn etl(rows: u32) -> impl Future<Output = anyhow::Result<Summary>>`, which runs a flow
//!   run (a subflow when awaited inside another flow).
//!
//! Parameter defaults: `#[param(default = 100)]` on an argument; `#[param(description = "...")]`
//! documents it in the schema.

use crate::{options, signature};
use proc_macro2::{TokenStream, TokenTree};
use quote::{format_ident, quote};
use std::collections::BTreeSet;
use syn::{Expr, Ident, ItemFn, LitStr, Path, Token, punctuated::Punctuated, visit::Visit};

struct ParamAttr {
    default: Option<Expr>,
    description: Option<LitStr>,
}

fn param_attr(attrs: &[syn::Attribute]) -> syn::Result<ParamAttr> {
    let mut out = ParamAttr {
        default: None,
        description: None,
    };
    for attr in attrs {
        if !attr.path().is_ident("param") {
            return Err(syn::Error::new_spanned(
                attr,
                "flow arguments take only #[param(default = ..., description = \"...\")]",
            ));
        }
        attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("default") {
                out.default = Some(meta.value()?.parse()?);
                Ok(())
            } else if meta.path.is_ident("description") {
                out.description = Some(meta.value()?.parse()?);
                Ok(())
            } else {
                Err(meta.error("expected `default = <expr>` or `description = \"...\"`"))
            }
        })?;
    }
    Ok(out)
}

/// Collects every name used as a path or inside a macro call in the flow body: the candidates
/// for "tasks and subflows this flow calls" (filtered against the registries at run time).
#[derive(Default)]
struct Calls(BTreeSet<String>);

impl<'ast> Visit<'ast> for Calls {
    fn visit_expr_path(&mut self, p: &'ast syn::ExprPath) {
        if let Some(seg) = p.path.segments.last() {
            self.0.insert(seg.ident.to_string());
        }
        syn::visit::visit_expr_path(self, p);
    }
    fn visit_macro(&mut self, m: &'ast syn::Macro) {
        fn walk(ts: TokenStream, out: &mut BTreeSet<String>) {
            for tt in ts {
                match tt {
                    TokenTree::Ident(i) => {
                        out.insert(i.to_string());
                    }
                    TokenTree::Group(g) => walk(g.stream(), out),
                    _ => {}
                }
            }
        }
        walk(m.tokens.clone(), &mut self.0);
    }
}

pub fn expand(args: TokenStream, item: TokenStream) -> syn::Result<TokenStream> {
    let opts = options::parse_flow(args)?;
    let f: ItemFn = syn::parse2(item)?;
    let sig = signature::analyse(&f, "flow")?;
    let vis = &f.vis;
    let ident = &f.sig.ident;
    let name = opts.name.clone().unwrap_or_else(|| ident.to_string());
    let def = format_ident!("__WEIR_FLOW_{}", ident);
    let schema_fn = format_ident!("__weir_schema_{}", ident);
    let run_fn = format_ident!("__weir_run_{}", ident);
    let docs = &sig.docs;
    let other_attrs = &sig.other_attrs;
    let block = &f.block;
    let ret = &sig.ret;
    let ok = &sig.ok;
    let outer_params = sig.params(false);
    let inner_params = sig.params(true);
    let idents = sig.idents();
    let doc_text = &sig.doc_text;
    let calls = called_names(block, ident);
    let params = Params::of(&sig, ident)?;
    let names = &params.names;
    let param_items = params.items(&name, ident, &schema_fn, &run_fn, &idents);
    let outcome = sig.outcome(quote!(__weir_body(#(#idents),*)));

    Ok(quote! {
        #param_items

        #[doc(hidden)]
        #[allow(non_upper_case_globals)]
        #vis static #def: ::weir::FlowDef = ::weir::FlowDef {
            name: #name,
            fn_name: ::core::stringify!(#ident),
            module: ::core::module_path!(),
            description: #doc_text,
            calls: &[#(#calls),*],
            parameters_schema: #schema_fn,
            start: #run_fn,
        };

        ::weir::__private::inventory::submit! {
            ::weir::__private::FlowRegistration(&#def)
        }

        #(#docs)*
        #[allow(clippy::too_many_arguments)]
        #vis fn #ident(#(#outer_params),*) -> impl ::core::future::Future<
            Output = ::weir::__private::anyhow::Result<#ok>,
        > + ::core::marker::Send + 'static {
            #(#other_attrs)*
            #[allow(clippy::too_many_arguments)]
            async fn __weir_body(#(#inner_params),*) -> #ret #block

            let mut __weir_params = ::weir::__private::Parameters::new();
            #(::weir::__private::put_param(&mut __weir_params, #names, &#idents);)*
            ::weir::__private::run_flow(#name, __weir_params, #outcome)
        }
    })
}

/// The names the flow's body uses, except its own: the `calls` of its `FlowDef`.
fn called_names(block: &syn::Block, flow: &Ident) -> Vec<String> {
    let mut calls = Calls::default();
    calls.visit_block(block);
    calls.0.remove(&flow.to_string());
    calls.0.into_iter().collect()
}

/// What a flow's arguments become, one entry per argument in order: the parameters struct's
/// fields, the default functions `#[param(default = …)]` asks for, and the statements taking
/// each argument out of a JSON object of parameters.
struct Params {
    fields: Vec<TokenStream>,
    default_fns: Vec<TokenStream>,
    takes: Vec<TokenStream>,
    /// The arguments' names, which are the parameters' names.
    names: Vec<String>,
}

impl Params {
    /// Reads every argument's `#[param]` attribute (the only one allowed).
    fn of(sig: &signature::Signature, flow: &Ident) -> syn::Result<Params> {
        let mut p = Params {
            fields: Vec::new(),
            default_fns: Vec::new(),
            takes: Vec::new(),
            names: Vec::new(),
        };
        for a in &sig.args {
            p.push(a, param_attr(&a.attrs)?, flow);
        }
        Ok(p)
    }

    /// Adds one argument: a field (with its default function when it has one) and its take.
    fn push(&mut self, a: &signature::Arg, pa: ParamAttr, flow: &Ident) {
        let (id, ty) = (&a.ident, &a.ty);
        let pname = id.to_string();
        self.names.push(pname.clone());
        let desc = pa.description.map(|d| quote!(#[doc = #d]));
        match pa.default {
            Some(expr) => {
                let dfn = format_ident!("__weir_default_{}_{}", flow, id);
                let dfn_str = dfn.to_string();
                self.default_fns.push(quote! {
                    #[doc(hidden)]
                    #[allow(non_snake_case)]
                    fn #dfn() -> #ty { #expr }
                });
                self.fields
                    .push(quote! { #desc #[serde(default = #dfn_str)] #id: #ty });
                self.takes.push(quote! {
                    let #id: #ty = ::weir::__private::take_param(
                        &mut __weir_p, #pname, ::core::option::Option::Some(#dfn as fn() -> #ty))?;
                });
            }
            None => {
                self.fields.push(quote! { #desc #id: #ty });
                self.takes.push(quote! {
                    let #id: #ty = ::weir::__private::take_param(
                        &mut __weir_p, #pname, ::core::option::Option::None::<fn() -> #ty>)?;
                });
            }
        }
    }

    /// The items behind the flow's `FlowDef`: the parameters struct (whose schema `describe`
    /// prints), the default functions, `schema_fn` and `run_fn`, which checks a JSON object
    /// of parameters field by field and starts the run.
    fn items(
        &self,
        name: &str,
        flow: &Ident,
        schema_fn: &Ident,
        run_fn: &Ident,
        idents: &[&Ident],
    ) -> TokenStream {
        let params_struct = format_ident!("__WeirParams_{}", flow);
        let (fields, default_fns, takes, names) =
            (&self.fields, &self.default_fns, &self.takes, &self.names);
        quote! {
            #[doc(hidden)]
            #[allow(non_camel_case_types, dead_code)]
            #[derive(::weir::__private::serde::Deserialize, ::weir::__private::schemars::JsonSchema)]
            #[serde(crate = "::weir::__private::serde", deny_unknown_fields)]
            #[schemars(crate = "::weir::__private::schemars", title = #name)]
            struct #params_struct {
                #(#fields,)*
            }

            #(#default_fns)*

            #[doc(hidden)]
            #[allow(non_snake_case)]
            fn #schema_fn() -> ::weir::__private::serde_json::Value {
                ::weir::__private::schemars::schema_for!(#params_struct).to_value()
            }

            #[doc(hidden)]
            #[allow(non_snake_case)]
            fn #run_fn(
                mut __weir_p: ::weir::__private::Parameters,
            ) -> ::core::result::Result<::weir::__private::FlowFuture, ::weir::ParamError> {
                ::weir::__private::check_unknown(&__weir_p, &[#(#names),*])?;
                #(#takes)*
                ::core::result::Result::Ok(::weir::__private::flow_future(#flow(#(#idents),*)))
            }
        }
    }
}

pub fn expand_main(input: TokenStream) -> syn::Result<TokenStream> {
    let paths = syn::parse::Parser::parse2(Punctuated::<Path, Token![,]>::parse_terminated, input)?;
    if paths.is_empty() {
        return Err(syn::Error::new(
            proc_macro2::Span::call_site(),
            "main! needs at least one flow: weir::main!(etl, chain)",
        ));
    }
    let defs = paths.iter().map(|p| {
        let mut p = p.clone();
        if let Some(last) = p.segments.last_mut() {
            last.ident = format_ident!("__WEIR_FLOW_{}", last.ident);
        }
        quote!(&#p)
    });
    Ok(quote! {
        fn main() -> ::std::process::ExitCode {
            ::weir::cli::main(&[#(#defs),*])
        }
    })
}
