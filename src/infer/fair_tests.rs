//! Fair sharing through the real facade over fake engines: a small request
//! is not stuck behind a big one's decodes, and a request that cannot meet
//! its deadline is refused before any of its work is spent.

use std::time::Duration;

use bytes::Bytes;
use tokio::sync::mpsc;

use super::fake;
use super::{InferError, PredictRequest};
use crate::config::ServerConfig;

const MODEL: &str = "gluon_seresnext50_32x4d";

/// A JPEG whose pixels depend on `seed` (size enough that decoding it is
/// real work in a debug build).
fn jpeg(seed: u8, side: u32) -> Bytes {
    let image = image::RgbImage::from_fn(side, side, |x, y| {
        image::Rgb([(x as u8) ^ seed, (y as u8).wrapping_add(seed), seed])
    });
    let mut bytes = std::io::Cursor::new(Vec::new());
    image
        .write_to(&mut bytes, image::ImageFormat::Jpeg)
        .expect("encode a JPEG");
    Bytes::from(bytes.into_inner())
}

fn request(images: Vec<Bytes>, timeout: Option<Duration>) -> PredictRequest {
    PredictRequest {
        model: MODEL.to_owned(),
        images,
        top_k: 1,
        timeout,
    }
}

fn one_decode_thread() -> ServerConfig {
    ServerConfig {
        preprocess_threads: 1,
        ..ServerConfig::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_one_image_request_finishes_before_an_earlier_many_image_one() {
    let served = fake::serve_with(&[MODEL], &one_decode_thread());
    let service = served.service.clone();
    let (done, mut order) = mpsc::unbounded_channel();

    let big: Vec<Bytes> = (0..10).map(|seed| jpeg(seed, 320)).collect();
    let (big_service, big_done) = (service.clone(), done.clone());
    let big_task = tokio::spawn(async move {
        let output = big_service.predict(request(big, None)).await;
        big_done.send("big").unwrap();
        output
    });
    // Until the big request's images wait in the decode scheduler.
    while service.decode_pool.pixels_ahead_of(0) == 0 {
        tokio::task::yield_now().await;
    }
    let small_service = service.clone();
    let small_task = tokio::spawn(async move {
        let output = small_service
            .predict(request(vec![jpeg(99, 320)], None))
            .await;
        done.send("small").unwrap();
        output
    });

    assert_eq!(order.recv().await, Some("small"));
    assert_eq!(order.recv().await, Some("big"));
    assert_eq!(small_task.await.unwrap().unwrap().predictions.len(), 1);
    assert_eq!(big_task.await.unwrap().unwrap().predictions.len(), 10);
    served.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_that_cannot_meet_its_deadline_is_refused_at_admission() {
    let served = fake::serve_with(&[MODEL], &one_decode_thread());
    let service = served.service.clone();
    // 64 x 1 Mpixel: seconds of decoding in a debug build, so the
    // estimate is past the 1 s slack. One image, shared: only the first
    // request here decodes any of them.
    let image = jpeg(7, 1024);
    let images: Vec<Bytes> = vec![image; 64];

    // Before any decode was measured, nothing is refused on an estimate:
    // this one gets its 504 the usual way.
    let error = service
        .predict(request(images.clone(), Some(Duration::from_millis(1))))
        .await
        .unwrap_err();
    assert!(matches!(error, InferError::DeadlineExceeded), "{error}");

    // A request with an ordinary deadline measures the decode rate (and is
    // itself answered).
    let primed = service
        .predict(request(vec![images[0].clone()], None))
        .await;
    assert_eq!(primed.unwrap().predictions.len(), 1);

    let error = service
        .predict(request(images, Some(Duration::from_millis(1))))
        .await
        .unwrap_err();
    assert!(
        matches!(error, InferError::WouldMissDeadline { .. }),
        "{error}"
    );
    assert_eq!(error.error_type(), "deadline_unreachable");
    let retry_after = error.retry_after().expect("a Retry-After");
    assert!(retry_after > Duration::from_millis(1), "{retry_after:?}");
    let refused = service
        .metrics()
        .rejections
        .with_label_values(&[MODEL, "deadline_unreachable"])
        .get();
    assert_eq!(refused, 1);
    served.stop().await;
}
