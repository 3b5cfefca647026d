//! `#[derive(Trace)]` for spangc.
//!
//! For a struct or enum with at most one lifetime parameter (the scope
//! brand, conventionally `'gc`), the derive writes:
//!
//! * `unsafe impl Trace<B>`: `trace` visits every field not marked
//!   `#[gc(skip)]`; `NEEDS_TRACE` is true if any traced field's type needs
//!   tracing. A field whose type names the type itself counts as needing
//!   it, which keeps a recursive type (`Option<Box<List>>`) from making the
//!   constant a cycle. `SEND` is the compiler's answer to `Self: Send`
//!   where the impl is not generic, else `false`.
//! * `unsafe impl Branded<'gc>` and `unsafe impl Rootable`: the type with its
//!   lifetime erased to `'static` and back (`Node<'gc>` <-> `Node<'static>`);
//!   type parameters erase through their own impls.
//! * A check that the type does not implement `Drop`: a destructor could
//!   read a `Gc` field whose object the sweeper already freed. Types that
//!   hold no `Gc` may opt out with `#[gc(allow_drop)]`; the derive then
//!   requires `Self: 'static + Send`, so the destructor can reach no branded
//!   pointer and may run on the sweeper's thread.
//! * For `#[gc(skip)]` fields, a check that the field type is
//!   `'static + Send`: it cannot hold a `Gc`, and dropping it on another
//!   thread is sound.
//!
//! Attributes:
//!
//! * `#[gc(brand = Path)]` on the type: implement `Trace<Path>` instead of
//!   `Trace<spangc::Global>`. If `Path` is one of the type's own type
//!   parameters, the impl is generic over it (that parameter is bounded by
//!   `Brand` rather than `Trace`).
//! * `#[gc(allow_drop)]` on the type: see above.
//! * `#[gc(skip)]` on a field: not traced (see above).

use proc_macro::TokenStream;
use proc_macro2::{TokenStream as TokenStream2, TokenTree};
use quote::{format_ident, quote};
use syn::{
    Data, DeriveInput, Fields, GenericParam, Ident, Lifetime, Type, WherePredicate,
    parse_macro_input, parse_quote,
};

/// Derives `spangc::Trace`, `spangc::Branded` and `spangc::Rootable`.
///
/// Programs use this derive through its re-export, `spangc::Trace`, whose
/// documentation has runnable examples (this crate cannot run them: it
/// cannot depend on `spangc`, which depends on it). What the derive
/// generates and checks is described in the `spangc-derive` crate
/// documentation.
#[proc_macro_derive(Trace, attributes(gc))]
pub fn derive_trace(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    match Derive::new(&input).map(|d| d.expand()) {
        Ok(ts) => ts.into(),
        Err(e) => e.to_compile_error().into(),
    }
}

/// One field: its pattern binding, its type, and whether it is traced.
struct Field {
    binding: Ident,
    member: syn::Member,
    ty: Type,
    skip: bool,
}

/// One variant (a struct is a single variant without a name).
struct Variant {
    name: Option<Ident>,
    fields: Vec<Field>,
}

struct Derive<'a> {
    input: &'a DeriveInput,
    variants: Vec<Variant>,
    brand: syn::Path,
    /// The type parameter that is the brand, if `brand = T` names one.
    brand_param: Option<Ident>,
    allow_drop: bool,
}

impl<'a> Derive<'a> {
    fn new(input: &'a DeriveInput) -> syn::Result<Self> {
        let mut brand: Option<syn::Path> = None;
        let mut allow_drop = false;
        for attr in input.attrs.iter().filter(|a| a.path().is_ident("gc")) {
            attr.parse_nested_meta(|meta| {
                if meta.path.is_ident("brand") {
                    brand = Some(meta.value()?.parse()?);
                    Ok(())
                } else if meta.path.is_ident("allow_drop") {
                    allow_drop = true;
                    Ok(())
                } else {
                    Err(meta.error(
                        "unknown gc attribute on a type; expected `brand = Path` or `allow_drop`",
                    ))
                }
            })?;
        }
        let brand = brand.unwrap_or_else(|| parse_quote!(::spangc::Global));
        let brand_param = input
            .generics
            .type_params()
            .map(|p| &p.ident)
            .find(|id| brand.is_ident(*id))
            .cloned();

        let lifetimes: Vec<&Lifetime> = input.generics.lifetimes().map(|l| &l.lifetime).collect();
        if lifetimes.len() > 1 {
            return Err(syn::Error::new_spanned(
                &input.generics,
                "#[derive(Trace)] supports at most one lifetime parameter (the scope brand, e.g. 'gc)",
            ));
        }

        let variants = match &input.data {
            Data::Struct(s) => vec![Variant {
                name: None,
                fields: fields_of(&s.fields)?,
            }],
            Data::Enum(e) => e
                .variants
                .iter()
                .map(|v| {
                    Ok(Variant {
                        name: Some(v.ident.clone()),
                        fields: fields_of(&v.fields)?,
                    })
                })
                .collect::<syn::Result<_>>()?,
            Data::Union(u) => {
                return Err(syn::Error::new_spanned(
                    u.union_token,
                    "#[derive(Trace)] does not support unions: the collector cannot know which field is live",
                ));
            }
        };
        Ok(Derive {
            input,
            variants,
            brand,
            brand_param,
            allow_drop,
        })
    }

    fn fields(&self) -> impl Iterator<Item = &Field> {
        self.variants.iter().flat_map(|v| v.fields.iter())
    }

    /// Type parameters other than the brand parameter.
    fn data_params(&self) -> impl Iterator<Item = &Ident> {
        self.input
            .generics
            .type_params()
            .map(|p| &p.ident)
            .filter(|id| Some(*id) != self.brand_param.as_ref())
    }

    fn expand(&self) -> TokenStream2 {
        let trace = self.trace_impl();
        let branded = self.branded_impls();
        let drop = self.drop_check();
        let skip = self.skip_check();
        quote! { #trace #branded #drop #skip }
    }

    fn trace_impl(&self) -> TokenStream2 {
        let name = &self.input.ident;
        let brand = &self.brand;
        let mut generics = self.input.generics.clone();
        {
            let wc = generics.make_where_clause();
            for p in self.data_params() {
                wc.predicates
                    .push(parse_quote!(#p: ::spangc::Trace<#brand>));
            }
            if let Some(b) = &self.brand_param {
                wc.predicates.push(parse_quote!(#b: ::spangc::Brand));
            }
        }
        let (impl_g, ty_g, where_c) = generics.split_for_impl();

        let needs: Vec<TokenStream2> = self
            .fields()
            .filter(|f| !f.skip)
            .map(|f| {
                let ty = &f.ty;
                if mentions(ty, name) {
                    quote!(true)
                } else {
                    quote!(<#ty as ::spangc::Trace<#brand>>::NEEDS_TRACE)
                }
            })
            .collect();

        // SEND: the compiler's own answer where the impl is not generic
        // (the inherent constant applies only if `Self: Send`); in a
        // generic impl that cannot be shown, and the trait's `false` is
        // used. Not the fields' answers: through `Cell` or `RefCell`, two
        // types naming each other would make those constants a cycle.
        let send = quote! {{
            struct __Probe<T: ?::core::marker::Sized>(::core::marker::PhantomData<T>);
            #[allow(dead_code)]
            trait __NotKnownSend {
                const SEND: bool = false;
            }
            impl<T: ?::core::marker::Sized> __NotKnownSend for __Probe<T> {}
            #[allow(dead_code)]
            impl<T: ?::core::marker::Sized + ::core::marker::Send> __Probe<T> {
                const SEND: bool = true;
            }
            __Probe::<Self>::SEND
        }};

        let arms = self.variants.iter().map(|v| {
            let path = match &v.name {
                Some(vn) => quote!(Self::#vn),
                None => quote!(Self),
            };
            let pats = v.fields.iter().map(|f| {
                let (m, b) = (&f.member, &f.binding);
                if f.skip {
                    quote!(#m: _)
                } else {
                    quote!(#m: #b)
                }
            });
            let calls = v.fields.iter().filter(|f| !f.skip).map(|f| {
                let b = &f.binding;
                quote!(__tracer.trace::<#brand, _>(#b);)
            });
            quote!(#path { #(#pats,)* } => { #(#calls)* })
        });
        let body = if self.variants.is_empty() {
            quote!(match *self {})
        } else {
            quote!(match self { #(#arms)* })
        };

        quote! {
            // SAFETY: generated by #[derive(Trace)]: every field not marked
            // #[gc(skip)] is traced (skipped fields are checked to be
            // 'static + Send below, so they hold no Gc); NEEDS_TRACE is the
            // disjunction of the traced fields'; Drop is ruled out below
            // (or the type is 'static + Send with #[gc(allow_drop)]).
            unsafe impl #impl_g ::spangc::Trace<#brand> for #name #ty_g #where_c {
                const NEEDS_TRACE: bool = false #(|| #needs)*;
                const SEND: bool = #send;

                #[inline]
                #[allow(unused_variables)]
                fn trace(&self, __tracer: &mut ::spangc::Tracer<'_>) {
                    #body
                }
            }
        }
    }

    /// `Branded<'gc>` and `Rootable`: the type's lifetime (if any) becomes
    /// the brand lifetime; type parameters erase through their own impls.
    fn branded_impls(&self) -> TokenStream2 {
        let name = &self.input.ident;
        let gc: Lifetime = Lifetime::new("'__gc", proc_macro2::Span::call_site());
        let data: Vec<&Ident> = self.data_params().collect();

        // Generic arguments of the type at a given brand: the lifetime
        // becomes `lt`, data parameters become `map(param)`, the brand and
        // const parameters stay.
        let args = |lt: &TokenStream2, map: &dyn Fn(&Ident) -> TokenStream2| -> TokenStream2 {
            let a = self.input.generics.params.iter().map(|p| match p {
                GenericParam::Lifetime(_) => lt.clone(),
                GenericParam::Type(t) if data.contains(&&t.ident) => map(&t.ident),
                GenericParam::Type(t) => {
                    let id = &t.ident;
                    quote!(#id)
                }
                GenericParam::Const(c) => {
                    let id = &c.ident;
                    quote!(#id)
                }
            });
            if self.input.generics.params.is_empty() {
                quote!()
            } else {
                quote!(<#(#a),*>)
            }
        };
        let at_gc = args(&quote!(#gc), &|p| quote!(#p));
        let erased = args(
            &quote!('static),
            &|p| quote!(<#p as ::spangc::Branded<#gc>>::Erased),
        );
        let at_static = args(&quote!('static), &|p| quote!(#p));
        let rebranded = args(
            &quote!(#gc),
            &|p| quote!(<#p as ::spangc::Rootable>::At<#gc>),
        );

        // Non-lifetime generic parameters (with their declared bounds), for
        // both impls.
        let other_params: Vec<&GenericParam> = self
            .input
            .generics
            .params
            .iter()
            .filter(|p| !matches!(p, GenericParam::Lifetime(_)))
            .collect();
        let declared_where: Vec<&WherePredicate> = self
            .input
            .generics
            .where_clause
            .iter()
            .flat_map(|w| w.predicates.iter())
            .collect();
        let branded_bounds = data.iter().map(|p| {
            quote!(
                #p: ::spangc::Branded<#gc>,
                <#p as ::spangc::Branded<#gc>>::Erased: ::core::marker::Sized,
                for<'__x> <<#p as ::spangc::Branded<#gc>>::Erased as ::spangc::Rootable>::At<'__x>: ::core::marker::Sized,
            )
        });
        let rootable_bounds = data.iter().map(|p| {
            quote!(#p: ::spangc::Rootable, for<'__x> <#p as ::spangc::Rootable>::At<'__x>: ::core::marker::Sized,)
        });
        let brand_bound = self
            .brand_param
            .as_ref()
            .map(|b| quote!(#b: ::spangc::Brand,));

        quote! {
            // SAFETY: generated by #[derive(Trace)]: `Erased` is this type
            // with its one lifetime set to 'static and each type parameter
            // erased by its own impl, so the two differ only in lifetimes.
            unsafe impl<#gc, #(#other_params),*> ::spangc::Branded<#gc> for #name #at_gc
            where #(#branded_bounds)* #brand_bound #(#declared_where,)*
            {
                type Erased = #name #erased;
            }

            // SAFETY: generated by #[derive(Trace)]: the inverse of the
            // Branded impl above.
            unsafe impl<#(#other_params),*> ::spangc::Rootable for #name #at_static
            where #(#rootable_bounds)* #brand_bound #(#declared_where,)*
            {
                type At<#gc> = #name #rebranded;
            }
        }
    }

    /// Rules out `Drop` (the impl below conflicts with the blanket impl
    /// for `T: Drop`), or with `allow_drop` requires `'static + Send`.
    fn drop_check(&self) -> TokenStream2 {
        let name = &self.input.ident;
        let (impl_g, ty_g, where_c) = self.input.generics.split_for_impl();
        if self.allow_drop {
            quote! {
                const _: () = {
                    fn __spangc_allow_drop_requires_static_send<T: 'static + ::core::marker::Send>() {}
                    #[allow(dead_code)]
                    fn __spangc_check #impl_g () #where_c {
                        __spangc_allow_drop_requires_static_send::<#name #ty_g>();
                    }
                };
            }
        } else {
            quote! {
                const _: () = {
                    #[allow(dead_code)]
                    trait TracedTypesMustNotImplementDropUseAllowDropIfTheyHoldNoGc {}
                    impl<T: ::core::ops::Drop> TracedTypesMustNotImplementDropUseAllowDropIfTheyHoldNoGc for T {}
                    impl #impl_g TracedTypesMustNotImplementDropUseAllowDropIfTheyHoldNoGc for #name #ty_g #where_c {}
                };
            }
        }
    }

    /// Skipped fields must be `'static + Send`.
    fn skip_check(&self) -> TokenStream2 {
        let tys: Vec<&Type> = self.fields().filter(|f| f.skip).map(|f| &f.ty).collect();
        if tys.is_empty() {
            return quote!();
        }
        let (impl_g, _, where_c) = self.input.generics.split_for_impl();
        quote! {
            const _: () = {
                fn __spangc_skipped_fields_must_be_static_send<T: ?::core::marker::Sized + 'static + ::core::marker::Send>() {}
                #[allow(dead_code)]
                fn __spangc_check #impl_g () #where_c {
                    #(__spangc_skipped_fields_must_be_static_send::<#tys>();)*
                }
            };
        }
    }
}

fn fields_of(fields: &Fields) -> syn::Result<Vec<Field>> {
    fields
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let mut skip = false;
            for attr in f.attrs.iter().filter(|a| a.path().is_ident("gc")) {
                attr.parse_nested_meta(|meta| {
                    if meta.path.is_ident("skip") {
                        skip = true;
                        Ok(())
                    } else {
                        Err(meta.error("unknown gc attribute on a field; expected `skip`"))
                    }
                })?;
            }
            Ok(Field {
                binding: format_ident!("__f{}", i),
                member: match &f.ident {
                    Some(id) => syn::Member::Named(id.clone()),
                    None => syn::Member::Unnamed(syn::Index::from(i)),
                },
                ty: f.ty.clone(),
                skip,
            })
        })
        .collect()
}

/// Whether `ty` mentions `name` anywhere (a recursive field).
fn mentions(ty: &Type, name: &Ident) -> bool {
    fn walk(ts: TokenStream2, name: &Ident) -> bool {
        ts.into_iter().any(|tt| match tt {
            TokenTree::Ident(id) => id == *name,
            TokenTree::Group(g) => walk(g.stream(), name),
            _ => false,
        })
    }
    walk(quote!(#ty), name)
}
