//! The six methods of `inference.GRPCInferenceService` on the HTTP API's
//! state: the same facade, server settings and API key.

use axum::http::StatusCode;
use tonic::metadata::{MetadataMap, MetadataValue};
use tonic::{Request, Response, Status};

use super::convert::{grpc_timeout, infer_call, infer_response};
use super::proto::grpc_inference_service_server::{
    GrpcInferenceService, GrpcInferenceServiceServer,
};
use super::proto::model_metadata_response::TensorMetadata;
use super::proto::{
    ModelInferRequest, ModelInferResponse, ModelMetadataRequest, ModelMetadataResponse,
    ModelReadyRequest, ModelReadyResponse, ServerLiveRequest, ServerLiveResponse,
    ServerMetadataRequest, ServerMetadataResponse, ServerReadyRequest, ServerReadyResponse,
};
use super::status::{http_equivalent, status};
use crate::http::error::{request_rejection, ApiError, RequestError};
use crate::http::extract::client_key;
use crate::http::respond::{millis, RequestCounter, UNKNOWN_MODEL_LABEL};
use crate::http::security::bearer_token;
use crate::http::v2::{target, tensor_metadata, EXTENSIONS, MODEL_VERSION};
use crate::http::AppState;
use crate::infer::{ClassifyRequest, InferError, ModelInfo};
use crate::metrics::Task;

/// The gRPC service as an axum router, for [`crate::server`]'s connection
/// loop. Messages may be as large as an HTTP body (`server.max_body_bytes`).
pub fn router(state: AppState) -> axum::Router {
    let limit = state.server.max_body_bytes;
    let service = GrpcInferenceServiceServer::new(Grpc { state })
        .max_decoding_message_size(limit)
        .max_encoding_message_size(usize::MAX);
    tonic::service::Routes::new(service).into_axum_router()
}

struct Grpc {
    state: AppState,
}

impl Grpc {
    /// With `server.api_key` set, the model methods need `authorization:
    /// Bearer <key>`, as the HTTP routes do; liveness and readiness stay open.
    fn authorize(&self, metadata: &MetadataMap) -> Result<(), Status> {
        let key = &self.state.server.api_key;
        let authorized = !key.is_set()
            || metadata
                .get("authorization")
                .and_then(|value| value.to_str().ok())
                .and_then(bearer_token)
                .is_some_and(|token| key.matches(token));
        if authorized {
            Ok(())
        } else {
            Err(status(&ApiError::unauthorized()))
        }
    }

    /// The served model `name` names; `NOT_FOUND` for any other model or a
    /// version other than the one served.
    fn model(&self, name: &str, version: &str) -> Result<ModelInfo, Status> {
        let model = self
            .state
            .service
            .model_info(name)
            .map_err(|error| status(&ApiError::from(error)))?;
        if !version.is_empty() && version != MODEL_VERSION {
            return Err(Status::not_found(format!(
                "model {name:?} has no version {version:?}; it serves version {MODEL_VERSION:?}"
            )));
        }
        Ok(model)
    }

    /// One inference, counted like HTTP V2's under its HTTP-equivalent status.
    async fn infer(
        &self,
        metadata: MetadataMap,
        request: ModelInferRequest,
    ) -> Result<Response<ModelInferResponse>, Status> {
        let service = &self.state.service;
        let metrics = service.metrics();
        let model = match self.model(&request.model_name, "") {
            Ok(model) => model,
            Err(error) => {
                metrics.count_request(UNKNOWN_MODEL_LABEL, Task::Predict, 404);
                return Err(error);
            }
        };
        let mut counter = RequestCounter::new(metrics, model.name(), Task::Predict);
        let result = self
            .classify(&metadata, request, &model, &mut counter)
            .await;
        let code = result
            .as_ref()
            .map_or_else(Status::code, |_| tonic::Code::Ok);
        let http = StatusCode::from_u16(http_equivalent(code))
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        counter.finish(http);
        result
    }

    async fn classify(
        &self,
        metadata: &MetadataMap,
        request: ModelInferRequest,
        model: &ModelInfo,
        counter: &mut RequestCounter<'_>,
    ) -> Result<Response<ModelInferResponse>, Status> {
        let server = &self.state.server;
        if self.state.service.is_draining() {
            // gRPC clients hold channels to one server rather than follow a
            // readiness probe, so new calls are refused at once with the
            // retryable code instead of served through the shutdown grace.
            return Err(status(&ApiError::from(InferError::ShuttingDown)));
        }
        let refuse = |error: RequestError| {
            self.state
                .service
                .metrics()
                .reject(model.name(), request_rejection(&error));
            status(&ApiError::from(error))
        };
        let deadline = grpc_timeout(
            metadata
                .get("grpc-timeout")
                .and_then(|value| value.to_str().ok()),
        )
        .map_err(refuse)?;
        let call = infer_call(request, target(model)).map_err(refuse)?;
        let features = call.wants_features();
        if features {
            counter.set_task(Task::Embed);
        }
        let headers = metadata.clone().into_headers();
        let timeout = [call.timeout, deadline, Some(server.request_timeout())]
            .into_iter()
            .flatten()
            .min();
        let classify = ClassifyRequest {
            client: client_key(&headers, &server.client_id_header),
            model: model.name().to_owned(),
            images: call.images,
            timeout,
            features,
        };
        let output = self
            .state
            .service
            .classify(classify)
            .await
            .map_err(|error| status(&ApiError::from(error)))?;
        let mut response = Response::new(infer_response(&output, call.id, &call.outputs));
        let timing = output.timing;
        for (name, duration) in [
            ("x-preprocess-time-ms", timing.preprocess),
            ("x-queue-time-ms", timing.batch_wait),
            ("x-inference-time-ms", timing.inference),
            ("x-total-time-ms", timing.total),
        ] {
            if let Ok(value) = MetadataValue::try_from(format!("{:.3}", millis(duration))) {
                response.metadata_mut().insert(name, value);
            }
        }
        Ok(response)
    }
}

#[tonic::async_trait]
impl GrpcInferenceService for Grpc {
    async fn server_live(
        &self,
        _request: Request<ServerLiveRequest>,
    ) -> Result<Response<ServerLiveResponse>, Status> {
        Ok(Response::new(ServerLiveResponse { live: true }))
    }

    async fn server_ready(
        &self,
        _request: Request<ServerReadyRequest>,
    ) -> Result<Response<ServerReadyResponse>, Status> {
        let ready = self.state.service.is_ready();
        Ok(Response::new(ServerReadyResponse { ready }))
    }

    async fn model_ready(
        &self,
        request: Request<ModelReadyRequest>,
    ) -> Result<Response<ModelReadyResponse>, Status> {
        self.authorize(request.metadata())?;
        let request = request.into_inner();
        let model = self.model(&request.name, &request.version)?;
        let ready = model.readiness.is_ready();
        Ok(Response::new(ModelReadyResponse { ready }))
    }

    async fn server_metadata(
        &self,
        request: Request<ServerMetadataRequest>,
    ) -> Result<Response<ServerMetadataResponse>, Status> {
        self.authorize(request.metadata())?;
        Ok(Response::new(ServerMetadataResponse {
            name: env!("CARGO_PKG_NAME").to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            extensions: EXTENSIONS.iter().map(|&name| name.to_owned()).collect(),
        }))
    }

    async fn model_metadata(
        &self,
        request: Request<ModelMetadataRequest>,
    ) -> Result<Response<ModelMetadataResponse>, Status> {
        self.authorize(request.metadata())?;
        let request = request.into_inner();
        let metadata = tensor_metadata(&self.model(&request.name, &request.version)?);
        let tensors = |tensors: Vec<crate::http::v2::dto::TensorMetadata>| {
            tensors
                .into_iter()
                .map(|tensor| TensorMetadata {
                    name: tensor.name.to_owned(),
                    datatype: tensor.datatype.to_owned(),
                    shape: tensor.shape,
                })
                .collect()
        };
        Ok(Response::new(ModelMetadataResponse {
            name: metadata.name.to_owned(),
            versions: metadata.versions.map(str::to_owned).to_vec(),
            platform: metadata.platform.to_owned(),
            inputs: tensors(metadata.inputs),
            outputs: tensors(metadata.outputs),
        }))
    }

    async fn model_infer(
        &self,
        request: Request<ModelInferRequest>,
    ) -> Result<Response<ModelInferResponse>, Status> {
        self.authorize(request.metadata())?;
        let (metadata, _, request) = request.into_parts();
        self.infer(metadata, request).await
    }
}
