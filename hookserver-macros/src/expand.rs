//! Code generation: what `#[webhook_endpoint]`, `#[main]` and `main!()` expand to.

use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned, ToTokens};
use syn::spanned::Spanned;
use syn::{Error, FnArg, Item, ItemFn, Result, ReturnType};

use crate::attr::{check_path, EndpointArgs};
use crate::valid::{check_endpoint_signature, combine, expect_fn};

/// Expands `#[webhook_endpoint(args)] item`; on error, returns the item unchanged
/// beside `compile_error!` so that the rest of the crate still type-checks.
pub(crate) fn webhook_endpoint(args: TokenStream, item: TokenStream) -> TokenStream {
    match try_webhook_endpoint(args, item.clone()) {
        Ok(tokens) => tokens,
        Err(err) => with_error(item, &err),
    }
}

fn try_webhook_endpoint(args: TokenStream, item: TokenStream) -> Result<TokenStream> {
    let parsed_args = EndpointArgs::parse_tokens(args);
    let parsed_item = syn::parse2::<Item>(item).and_then(|item| {
        expect_fn(
            item,
            "webhook_endpoint",
            "`async fn name(payload: WebhookPayload)`",
        )
    });
    // Report the attribute's and the item's problems together.
    let (args, func) = match (parsed_args, parsed_item) {
        (Ok(args), Ok(func)) => (args, func),
        (Err(mut a), Err(b)) => {
            a.combine(b);
            return Err(a);
        }
        (Err(e), _) | (_, Err(e)) => return Err(e),
    };
    let mut errors = Vec::new();
    let path = match &args.path {
        Some(lit) => check_path(lit).map_err(|e| errors.push(e)).ok(),
        None => Some(
            func.sig
                .ident
                .to_string()
                .trim_start_matches("r#")
                .to_owned(),
        ),
    };
    if let Err(err) = check_endpoint_signature(&func.sig) {
        errors.push(err);
    }
    combine(errors)?;
    let path = path.unwrap_or_default();
    Ok(endpoint_tokens(&func, &path))
}

fn endpoint_tokens(func: &ItemFn, path: &str) -> TokenStream {
    let ident = &func.sig.ident;
    let fn_name = ident.to_string().trim_start_matches("r#").to_owned();
    let holder = format_ident!("__hookserver_endpoint_{}", fn_name);
    let span = ident.span();

    let mut bindings = Vec::new();
    let mut arg_names = Vec::new();
    let mut checks = Vec::new();
    for (index, arg) in func.sig.inputs.iter().enumerate() {
        let FnArg::Typed(typed) = arg else { continue };
        let ty = &typed.ty;
        let name = format_ident!("__hookserver_arg{}", index);
        let ty_span = ty.span();
        if func.sig.asyncness.is_none() {
            checks.push(quote_spanned! {ty_span=>
                ::hookserver::__private::plain_fn_handler_params_must_be_send::<#ty>();
            });
        }
        bindings.push(quote_spanned! {ty_span=>
            let #name: #ty = match __hookserver_delivery.param::<#ty>().await {
                ::std::result::Result::Ok(value) => value,
                ::std::result::Result::Err(response) => return response,
            };
        });
        arg_names.push(name);
    }

    let call = if func.sig.asyncness.is_some() {
        quote! { #ident(#(#arg_names),*).await }
    } else {
        if let ReturnType::Type(_, ty) = &func.sig.output {
            let ty_span = ty.span();
            checks.push(quote_spanned! {ty_span=>
                ::hookserver::__private::plain_fn_handler_answers_must_be_send::<#ty>();
            });
        }
        quote! {
            match ::hookserver::__private::run_blocking(move || #ident(#(#arg_names),*)).await {
                ::std::result::Result::Ok(value) => value,
                ::std::result::Result::Err(response) => return response,
            }
        }
    };
    let reply_span = match &func.sig.output {
        ReturnType::Type(_, ty) => ty.span(),
        ReturnType::Default => span,
    };
    let reply = quote_spanned! {reply_span=>
        (&&&::hookserver::__private::ReplyWrap::of(&__hookserver_ret))
            .__hookserver_reply_kind()
            .reply(__hookserver_ret, __hookserver_delivery)
    };

    quote_spanned! {span=>
        #func

        #[doc(hidden)]
        #[allow(non_upper_case_globals, dead_code, unused_qualifications, clippy::all, clippy::pedantic)]
        const #holder: () = {
            fn __hookserver_handler<'d>(
                __hookserver_delivery: &'d ::hookserver::__private::Delivery,
            ) -> ::hookserver::__private::HandlerFuture<'d> {
                ::std::boxed::Box::pin(async move {
                    #[allow(unused_imports)]
                    use ::hookserver::__private::{
                        ReplyViaDisplay as _, ReplyViaInto as _, ReplyViaResponder as _,
                    };
                    #(#checks)*
                    #(#bindings)*
                    let __hookserver_ret = #call;
                    #reply
                })
            }
            ::hookserver::__private::inventory::submit! {
                ::hookserver::__private::Registration::new(
                    #path,
                    #fn_name,
                    ::std::module_path!(),
                    ::std::file!(),
                    ::std::line!(),
                    __hookserver_handler,
                )
            }
        };
    }
}

/// Expands `main!()`.
pub(crate) fn main_bang(input: TokenStream) -> TokenStream {
    if !input.is_empty() {
        let error = Error::new_spanned(
            input,
            "`main!()` takes no arguments; configure the server with `#[hookserver::launch]` on your own `fn main`",
        )
        .into_compile_error();
        // A stub `main` keeps the error above the only one.
        return quote! { #error fn main() {} };
    }
    quote! {
        fn main() -> ::std::process::ExitCode {
            ::hookserver::__private::main_launch()
        }
    }
}

/// Expands `#[main]` on the user's `fn main` or `async fn main`.
pub(crate) fn main_attr(args: TokenStream, item: TokenStream) -> TokenStream {
    match try_main_attr(args, item.clone()) {
        Ok(tokens) => tokens,
        Err(err) => with_error(item, &err),
    }
}

fn try_main_attr(args: TokenStream, item: TokenStream) -> Result<TokenStream> {
    let mut errors = Vec::new();
    if !args.is_empty() {
        errors.push(Error::new_spanned(
            &args,
            "`#[hookserver::launch]` takes no arguments; configure the server in the body of `main`",
        ));
    }
    let func = match syn::parse2::<Item>(item)
        .and_then(|item| expect_fn(item, "hookserver::launch", "`fn main()`"))
    {
        Ok(func) => func,
        Err(err) => {
            errors.push(err);
            return combine(errors).map(|()| TokenStream::new());
        }
    };
    let sig = &func.sig;
    if sig.ident != "main" {
        errors.push(Error::new_spanned(
            &sig.ident,
            "`#[hookserver::launch]` goes on `fn main`; to launch from another fn, call `hookserver::launch()`",
        ));
    }
    if !sig.inputs.is_empty() {
        errors.push(Error::new_spanned(
            &sig.inputs,
            "`fn main` takes no parameters; remove them",
        ));
    }
    if !sig.generics.params.is_empty() {
        errors.push(Error::new_spanned(
            &sig.generics.params,
            "`fn main` cannot be generic; remove the parameters",
        ));
    }
    combine(errors)?;

    let attrs = &func.attrs;
    let vis = &func.vis;
    let output = &sig.output;
    let block = &func.block;
    let body = if sig.asyncness.is_some() {
        quote! {
            async fn __hookserver_user_main() #output #block
            ::hookserver::__private::serve_after_async_main(__hookserver_user_main)
        }
    } else {
        quote! {
            fn __hookserver_user_main() #output #block
            ::hookserver::__private::serve_after_main(__hookserver_user_main())
        }
    };
    let span = sig.ident.span();
    Ok(quote_spanned! {span=>
        #(#attrs)*
        #vis fn main() #output {
            #body
        }
    })
}

/// The item as the user wrote it, and the error beside it.
fn with_error(item: TokenStream, err: &Error) -> TokenStream {
    let mut tokens = err.to_compile_error();
    item.to_tokens(&mut tokens);
    tokens
}
