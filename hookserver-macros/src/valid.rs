//! Checks that the annotated item can be a webhook endpoint.

use syn::spanned::Spanned;
use syn::{Error, FnArg, Item, ItemFn, Result, ReturnType, Signature, Type};

/// Returns the fn if the item is one, or an error spanned on the item's keyword.
pub(crate) fn expect_fn(item: Item, attr_name: &str, hint: &str) -> Result<ItemFn> {
    let item = match item {
        Item::Fn(func) => return Ok(func),
        other => other,
    };
    let (span, what) = match &item {
        Item::Struct(s) => (s.struct_token.span, "a struct"),
        Item::Enum(e) => (e.enum_token.span, "an enum"),
        Item::Union(u) => (u.union_token.span, "a union"),
        Item::Const(c) => (c.const_token.span, "a const"),
        Item::Static(s) => (s.static_token.span, "a static"),
        Item::Impl(i) => (i.impl_token.span, "an impl block"),
        Item::Mod(m) => (m.mod_token.span, "a module"),
        Item::Trait(t) => (t.trait_token.span, "a trait"),
        Item::Type(t) => (t.type_token.span, "a type alias"),
        Item::Use(u) => (u.use_token.span, "a use declaration"),
        Item::Fn(_) => (item.span(), "this item"),
        other => (other.span(), "this item"),
    };
    Err(Error::new(
        span,
        format!("`#[{attr_name}]` goes on a fn, not on {what}; write it above {hint}"),
    ))
}

/// Collects every reason why `sig` cannot be a webhook endpoint.
pub(crate) fn check_endpoint_signature(sig: &Signature) -> Result<()> {
    let mut errors: Vec<Error> = Vec::new();
    if let Some(unsafety) = &sig.unsafety {
        errors.push(Error::new(
            unsafety.span,
            "a webhook endpoint cannot be an `unsafe fn`; remove `unsafe` and use an `unsafe` block inside the body",
        ));
    }
    if !sig.generics.params.is_empty() {
        errors.push(Error::new_spanned(
            &sig.generics.params,
            "a webhook endpoint cannot be generic; use concrete types, such as `Json<MyEvent>` instead of `Json<T>`",
        ));
    } else if let Some(where_clause) = &sig.generics.where_clause {
        errors.push(Error::new_spanned(
            where_clause,
            "a webhook endpoint cannot have a `where` clause; use concrete types",
        ));
    }
    if let Some(variadic) = &sig.variadic {
        errors.push(Error::new_spanned(
            variadic,
            "a webhook endpoint cannot be variadic; list its parameters",
        ));
    }
    for arg in &sig.inputs {
        match arg {
            FnArg::Receiver(receiver) => errors.push(Error::new_spanned(
                receiver,
                "a webhook endpoint cannot take `self`; make it a free fn outside the `impl` block",
            )),
            FnArg::Typed(typed) => {
                if let Some(err) = check_param_type(&typed.ty) {
                    errors.push(err);
                }
            }
        }
    }
    if let ReturnType::Type(_, ty) = &sig.output {
        if contains_impl_trait(ty) && sig.asyncness.is_none() {
            errors.push(Error::new_spanned(
                ty,
                "a plain (non-async) webhook endpoint cannot return `impl Trait`; name the type, or make the fn `async`",
            ));
        }
    }
    combine(errors)
}

fn check_param_type(ty: &Type) -> Option<Error> {
    match ty {
        Type::Reference(reference) => Some(Error::new_spanned(
            reference,
            "a webhook parameter must be an owned value; write `String`, `Bytes`, `WebhookPayload` or `Json<T>` instead of a reference",
        )),
        Type::ImplTrait(_) => Some(Error::new_spanned(
            ty,
            "`impl Trait` parameters make the fn generic; name a concrete type such as `WebhookPayload` or `Json<MyEvent>`",
        )),
        Type::Infer(_) => Some(Error::new_spanned(
            ty,
            "a webhook parameter needs a type; write `WebhookPayload`, `HttpRequest`, `Json<T>`, `Bytes` or `String`",
        )),
        Type::Paren(inner) => check_param_type(&inner.elem),
        Type::Group(inner) => check_param_type(&inner.elem),
        _ => None,
    }
}

fn contains_impl_trait(ty: &Type) -> bool {
    quote::ToTokens::to_token_stream(ty)
        .into_iter()
        .any(|tt| matches!(&tt, proc_macro2::TokenTree::Ident(i) if i == "impl"))
}

/// Joins several errors into one, or `Ok` when there are none.
pub(crate) fn combine(errors: Vec<Error>) -> Result<()> {
    let mut iter = errors.into_iter();
    match iter.next() {
        None => Ok(()),
        Some(mut first) => {
            for err in iter {
                first.combine(err);
            }
            Err(first)
        }
    }
}
