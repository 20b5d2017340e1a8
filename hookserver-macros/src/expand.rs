//! Stage 3, expansion: the code a validated endpoint or `fn main` becomes. Nothing is
//! checked here: `valid` did it.

use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{FnArg, ReturnType};

use crate::valid::{Endpoint, Launch};

/// The fn as written, and beside it the adapter and its registration.
pub(crate) fn webhook_endpoint(endpoint: &Endpoint) -> TokenStream {
    let Endpoint {
        func,
        path,
        fn_name,
        queued,
        filter,
    } = endpoint;
    let ident = &func.sig.ident;
    let holder = format_ident!("__hookserver_endpoint_{}", fn_name);
    let span = ident.span();

    let mut bindings = Vec::new();
    let mut arg_names = Vec::new();
    let mut checks = Vec::new();
    let mut check_reads = Vec::new();
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
        if *queued {
            // Read from what was stored; a type that needs the live request does not
            // implement `QueuedParam`, whose message says why.
            bindings.push(quote_spanned! {ty_span=>
                let #name: #ty = match ::hookserver::__private::queued_param::<#ty>(__hookserver_delivery) {
                    ::std::result::Result::Ok(value) => value,
                    ::std::result::Result::Err(response) => return response,
                };
            });
            // What the check reads, it keeps for the first attempt (a parsed payload).
            check_reads.push(quote_spanned! {ty_span=>
                ::hookserver::__private::queued_keep(
                    __hookserver_delivery,
                    ::hookserver::__private::queued_param::<#ty>(__hookserver_delivery)?,
                );
            });
        } else {
            // Read at once when no extractor is needed (no future: fewer moves of a
            // payload), else through actix-web's extractor. The same match as
            // `extract_args!` in `hookserver/src/endpoint/handler.rs`, written out here: a
            // shared `macro_rules!` turned a parameter that is no extractor into three
            // errors instead of one at its type.
            bindings.push(quote_spanned! {ty_span=>
                let #name: #ty = match __hookserver_delivery.param_now::<#ty>() {
                    ::std::option::Option::Some(::std::result::Result::Ok(value)) => *value,
                    ::std::option::Option::Some(::std::result::Result::Err(rejection)) => {
                        return ::hookserver::actix_web::ResponseError::error_response(&rejection)
                    }
                    ::std::option::Option::None => match __hookserver_delivery.param::<#ty>().await {
                        ::std::result::Result::Ok(value) => value,
                        ::std::result::Result::Err(response) => return response,
                    },
                };
            });
        }
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
    let reply = if *queued {
        quote_spanned! {reply_span=>
            ::hookserver::__private::queued_outcome(__hookserver_ret)
        }
    } else {
        quote_spanned! {reply_span=>
            (&&&::hookserver::__private::ReplyWrap::of(&__hookserver_ret))
                .__hookserver_reply_kind()
                .reply(__hookserver_ret, __hookserver_delivery)
        }
    };
    let filtered = match filter {
        Some([scopes, actions, types]) => {
            quote! { .filtered(&[#(#scopes),*], &[#(#actions),*], &[#(#types),*]) }
        }
        None => TokenStream::new(),
    };
    let (check_fn, queued_registration) = if *queued {
        (
            quote! {
                fn __hookserver_check(
                    __hookserver_delivery: &::hookserver::__private::Delivery,
                ) -> ::std::result::Result<(), ::hookserver::actix_web::HttpResponse> {
                    #(#check_reads)*
                    ::std::result::Result::Ok(())
                }
            },
            quote! { .queued(__hookserver_check) },
        )
    } else {
        (TokenStream::new(), TokenStream::new())
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
            #check_fn
            ::hookserver::__private::inventory::submit! {
                ::hookserver::__private::Registration::new(
                    #path,
                    #fn_name,
                    ::std::module_path!(),
                    ::std::file!(),
                    ::std::line!(),
                    __hookserver_handler,
                )#queued_registration #filtered
            }
        };
    }
}

/// `main!()`: a `fn main` that serves every endpoint.
pub(crate) fn main_bang() -> TokenStream {
    quote! {
        fn main() -> ::std::process::ExitCode {
            ::hookserver::__private::main_launch()
        }
    }
}

/// `#[hookserver::launch]` on the user's `fn main` or `async fn main`: theirs runs first,
/// then the server.
pub(crate) fn launch(launch: &Launch) -> TokenStream {
    let func = &launch.func;
    let sig = &func.sig;
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
    quote_spanned! {span=>
        #(#attrs)*
        #vis fn main() #output {
            #body
        }
    }
}
