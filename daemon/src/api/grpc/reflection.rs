//! Server reflection, built at the first request for it. Building it decodes every
//! descriptor of the API into lookup tables: 160 kB of heap for each of the two versions,
//! held by every daemon from its start, while most are never asked (voipctl knows the
//! API; grpcurl and grpcio's reflection clients ask once).

use std::convert::Infallible;
use std::sync::{Arc, OnceLock};

use tonic::body::Body;
use tonic::codegen::http::{Request, Response};
use tonic::codegen::{BoxFuture, Context, Poll, Service};
use tonic::server::NamedService;
use tonic_reflection::server::{v1, v1alpha};
use voipd_proto::v1::FILE_DESCRIPTOR_SET;

type Made<S> = Result<S, tonic_reflection::server::Error>;

/// A service made by `make` when the first request for it comes.
pub(super) struct Lazy<S> {
    make: fn() -> Made<S>,
    /// None: making it failed (said in the log once); its requests get UNIMPLEMENTED.
    made: Arc<OnceLock<Option<S>>>,
}

impl<S> Clone for Lazy<S> {
    fn clone(&self) -> Self {
        Lazy {
            make: self.make,
            made: self.made.clone(),
        }
    }
}

impl<S> Lazy<S> {
    fn new(make: fn() -> Made<S>) -> Self {
        Lazy {
            make,
            made: Arc::default(),
        }
    }
}

/// The v1 reflection service (grpcurl 1.8 and later).
pub(super) fn v1() -> Lazy<v1::ServerReflectionServer<impl v1::ServerReflection>> {
    Lazy::new(|| {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(FILE_DESCRIPTOR_SET)
            .build_v1()
    })
}

/// The v1alpha one: grpcio's reflection client and grpcurl before 1.8 still speak it.
pub(super) fn v1alpha() -> Lazy<v1alpha::ServerReflectionServer<impl v1alpha::ServerReflection>> {
    Lazy::new(|| {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(FILE_DESCRIPTOR_SET)
            .build_v1alpha()
    })
}

impl<S: NamedService> NamedService for Lazy<S> {
    const NAME: &'static str = S::NAME;
}

impl<S> Service<Request<Body>> for Lazy<S>
where
    S: Service<Request<Body>, Response = Response<Body>, Error = Infallible>
        + Clone
        + Send
        + Sync
        + 'static,
    S::Future: Send + 'static,
{
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<Response<Body>, Infallible>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        // Readiness is the made service's, asked in `call`: it is not made yet here.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<Body>) -> Self::Future {
        let made = self.made.get_or_init(|| {
            (self.make)()
                .inspect_err(|e| tracing::error!("gRPC reflection cannot be served: {e}"))
                .ok()
        });
        match made.clone() {
            Some(mut service) => Box::pin(async move {
                std::future::poll_fn(|cx| service.poll_ready(cx)).await?;
                service.call(req).await
            }),
            None => Box::pin(std::future::ready(Ok(tonic::Status::unimplemented(
                "server reflection is not available: see the daemon's log",
            )
            .into_http()))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_versions_can_be_made_from_the_api_descriptors() {
        // At start nothing tries them any more: this is where a bad descriptor set shows.
        assert!((v1().make)().is_ok());
        assert!((v1alpha().make)().is_ok());
    }
}
