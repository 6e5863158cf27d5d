//! A middleware that wraps only the requests it must: [`Around`] hands each request either
//! straight to the inner service's own future, or to a boxed future of its own. A request it
//! has no business with costs no boxing and no clone of the inner service, as an axum
//! `from_fn` middleware would cost every request. The recording middleware and the link
//! shaping are both made this way.
//!
//! ```ignore
//! router.layer(AroundLayer(state.trace.clone())) // TraceHub: Wrap<S>
//! ```

use std::{
    convert::Infallible,
    future::Future,
    task::{Context, Poll},
};

use axum::{
    extract::Request,
    response::{IntoResponse, Response},
};
use futures_util::future::{BoxFuture, Either};
use tower::{Layer, Service};

use crate::error::AppError;

/// What [`Wrap::wrap`] answers: the inner service's own future, or one of the wrapper's.
pub type Wrapped<F> = Either<F, BoxFuture<'static, Result<Response, Infallible>>>;

/// What a middleware does with a request, given the inner service (ready to be called).
pub trait Wrap<S: Service<Request>>: Clone {
    fn wrap(&self, request: Request, inner: &mut S) -> Wrapped<S::Future>;
}

/// The request as it is: the inner service's own future.
pub fn passed<S: Service<Request>>(request: Request, inner: &mut S) -> Wrapped<S::Future> {
    Either::Left(inner.call(request))
}

/// The wrapper's own future for the request.
pub fn wrapped<F>(
    future: impl Future<Output = Result<Response, Infallible>> + Send + 'static,
) -> Wrapped<F> {
    Either::Right(Box::pin(future))
}

/// The request refused with `error`, answered at once.
pub fn refused<F>(error: AppError) -> Wrapped<F> {
    wrapped(std::future::ready(Ok(error.into_response())))
}

/// The layer of a [`Wrap`].
#[derive(Clone)]
pub struct AroundLayer<W>(pub W);

impl<S, W: Clone> Layer<S> for AroundLayer<W> {
    type Service = Around<W, S>;

    fn layer(&self, inner: S) -> Around<W, S> {
        Around {
            wrap: self.0.clone(),
            inner,
        }
    }
}

/// [`AroundLayer`]'s service.
#[derive(Clone)]
pub struct Around<W, S> {
    wrap: W,
    inner: S,
}

impl<W, S> Service<Request> for Around<W, S>
where
    S: Service<Request, Response = Response, Error = Infallible>,
    W: Wrap<S>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Wrapped<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        self.wrap.wrap(request, &mut self.inner)
    }
}
