//! What the task and flow macros need to know about the annotated `async fn`: its arguments,
//! its success type, and whether it returns a `Result`.

use proc_macro2::TokenStream;
use quote::quote;
use syn::{Attribute, FnArg, GenericArgument, Ident, ItemFn, Pat, PathArguments, ReturnType, Type};

/// One argument of the function.
pub struct Arg {
    pub ident: Ident,
    pub mutable: bool,
    pub ty: Type,
    pub attrs: Vec<Attribute>,
}

/// The parts of an annotated function.
pub struct Signature {
    pub args: Vec<Arg>,
    /// The declared return type (`()` when absent).
    pub ret: Type,
    /// The success type: `T` of `Result<T, E>`, or the return type itself.
    pub ok: Type,
    /// Whether the function returns a `Result`.
    pub is_result: bool,
    /// Doc comments (kept on the generated function).
    pub docs: Vec<Attribute>,
    /// Other attributes (moved to the inner body function).
    pub other_attrs: Vec<Attribute>,
    /// The doc comment's lines, trimmed and joined: the `description` of the
    /// generated definition.
    pub doc_text: String,
}

/// Checks the shape of the function and splits it into parts.
pub fn analyse(f: &ItemFn, what: &str) -> syn::Result<Signature> {
    if f.sig.asyncness.is_none() {
        return Err(syn::Error::new_spanned(
            f.sig.fn_token,
            format!("#[{what}] needs an `async fn`"),
        ));
    }
    if !f.sig.generics.params.is_empty() || f.sig.generics.where_clause.is_some() {
        return Err(syn::Error::new_spanned(
            &f.sig.generics,
            format!("#[{what}] functions cannot be generic"),
        ));
    }
    let mut args = Vec::new();
    for input in &f.sig.inputs {
        match input {
            FnArg::Receiver(r) => {
                return Err(syn::Error::new_spanned(
                    r,
                    format!("#[{what}] functions cannot take `self`"),
                ));
            }
            FnArg::Typed(pt) => match &*pt.pat {
                Pat::Ident(pi) if pi.by_ref.is_none() && pi.subpat.is_none() => args.push(Arg {
                    ident: pi.ident.clone(),
                    mutable: pi.mutability.is_some(),
                    ty: (*pt.ty).clone(),
                    attrs: pt.attrs.clone(),
                }),
                other => {
                    return Err(syn::Error::new_spanned(
                        other,
                        format!("#[{what}] arguments must be plain names such as `rows: Vec<Row>`"),
                    ));
                }
            },
        }
    }
    let ret: Type = match &f.sig.output {
        ReturnType::Default => syn::parse_quote!(()),
        ReturnType::Type(_, t) => (**t).clone(),
    };
    let (ok, is_result) = match result_ok_type(&ret) {
        Some(t) => (t, true),
        None => (ret.clone(), false),
    };
    let (docs, other_attrs): (Vec<_>, Vec<_>) = f
        .attrs
        .iter()
        .cloned()
        .partition(|a| a.path().is_ident("doc"));
    let doc_text = docs
        .iter()
        .filter_map(|a| match &a.meta {
            syn::Meta::NameValue(nv) => match &nv.value {
                syn::Expr::Lit(syn::ExprLit {
                    lit: syn::Lit::Str(s),
                    ..
                }) => Some(s.value().trim().to_string()),
                _ => None,
            },
            _ => None,
        })
        .collect::<Vec<_>>()
        .join(" ")
        .trim()
        .to_string();
    Ok(Signature {
        args,
        ret,
        ok,
        is_result,
        docs,
        other_attrs,
        doc_text,
    })
}

/// `T` when `ty` is written `Result<T, ..>` / `anyhow::Result<T>` / `std::result::Result<T, E>`.
fn result_ok_type(ty: &Type) -> Option<Type> {
    let Type::Path(tp) = ty else { return None };
    let last = tp.path.segments.last()?;
    if last.ident != "Result" {
        return None;
    }
    let PathArguments::AngleBracketed(ab) = &last.arguments else {
        return None;
    };
    match ab.args.first()? {
        GenericArgument::Type(t) => Some(t.clone()),
        _ => None,
    }
}

impl Signature {
    /// `a: A, b: B` without argument attributes; `mut` kept only when `keep_mut`.
    pub fn params(&self, keep_mut: bool) -> Vec<TokenStream> {
        self.args
            .iter()
            .map(|a| {
                let (id, ty) = (&a.ident, &a.ty);
                if a.mutable && keep_mut {
                    quote!(mut #id: #ty)
                } else {
                    quote!(#id: #ty)
                }
            })
            .collect()
    }

    /// The argument names, in order.
    pub fn idents(&self) -> Vec<&Ident> {
        self.args.iter().map(|a| &a.ident).collect()
    }

    /// Wraps a future of the declared return type into `anyhow::Result<Ok>`.
    pub fn outcome(&self, fut: TokenStream) -> TokenStream {
        if self.is_result {
            quote!(::weir::__private::outcome(#fut))
        } else {
            quote!(::weir::__private::plain_outcome(#fut))
        }
    }
}
