//! Fair sharing through the real facade over fake engines: a small request
//! is not stuck behind a big one's decodes nor behind its crops in the
//! model's queue, and a request that cannot meet its deadline is refused
//! before any of its work is spent.

use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::mpsc;

use super::fake;
use super::{ClassifyRequest, InferError, InferenceService, PredictRequest, RequestImages};
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
        client: None,
        model: MODEL.to_owned(),
        images,
        top_k: 1,
        timeout,
    }
}

/// Pixels waiting or decoding in the scheduler.
fn waiting(service: &InferenceService) -> u64 {
    const ALL: u64 = 1 << 50;
    service.decode_pool.pixels_ahead_of(ALL) - ALL
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
async fn a_request_that_cannot_meet_its_deadline_behind_others_is_refused_at_admission() {
    let served = fake::serve_with(&[MODEL], &one_decode_thread());
    let service = served.service.clone();
    // 1 Mpixel: large enough to measure the decode rate. One image,
    // shared: only what runs is decoded, and little of it does.
    let image = jpeg(7, 1024);
    let own = 16;

    // Before any decode was measured, nothing is refused on an estimate.
    let error = service
        .predict(request(
            vec![image.clone(); own],
            Some(Duration::from_millis(1)),
        ))
        .await
        .unwrap_err();
    assert!(matches!(error, InferError::DeadlineExceeded), "{error}");

    // A request with an ordinary deadline measures the rate (and is answered).
    let primed = service.predict(request(vec![image.clone()], None)).await;
    assert_eq!(primed.unwrap().predictions.len(), 1);
    let per_megapixel = service.decode_pool.time_per_megapixel().expect("measured");

    // Two requests ahead, each with more images waiting than ours.
    let ahead: Vec<_> = (0..2)
        .map(|_| {
            let (service, images) = (service.clone(), vec![image.clone(); 2 * own]);
            // A deadline of their own that no estimate can refuse.
            let timeout = Some(Duration::from_secs(3600));
            tokio::spawn(async move { service.predict(request(images, timeout)).await })
        })
        .collect();
    while waiting(&service) < 2 * 2 * own as u64 * 1_000_000 {
        tokio::task::yield_now().await;
    }

    // Ours alone would fit its deadline with room to spare; behind a fair
    // share of theirs (about 3x its own work) it cannot.
    let own_alone = per_megapixel.mul_f64(own as f64 * 1024.0 * 1024.0 / 1e6);
    let timeout = own_alone.mul_f64(1.25);
    let error = service
        .predict(request(vec![image.clone(); own], Some(timeout)))
        .await
        .unwrap_err();
    assert!(
        matches!(error, InferError::WouldMissDeadline { .. }),
        "{error}"
    );
    assert_eq!(error.error_type(), "deadline_unreachable");
    let retry_after = error.retry_after().expect("a Retry-After");
    assert!(retry_after > timeout, "{retry_after:?} vs {timeout:?}");
    let refused = service
        .metrics()
        .rejections
        .with_label_values(&[MODEL, "deadline_unreachable"])
        .get();
    assert_eq!(refused, 1);

    // Their clients go away: their remaining images are never decoded.
    for task in ahead {
        task.abort();
        let _ = task.await;
    }
    // At most the ones running: the worker's and the express slot's.
    assert!(
        waiting(&service) <= 2 * 1024 * 1024,
        "{}",
        waiting(&service)
    );
    served.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_that_cannot_make_their_deadline_even_alone_try_one_at_a_time() {
    let served = fake::serve_with(&[MODEL], &one_decode_thread());
    let service = served.service.clone();
    let image = jpeg(7, 1024);
    let primed = service.predict(request(vec![image.clone()], None)).await;
    assert_eq!(primed.unwrap().predictions.len(), 1);
    let per_megapixel = service.decode_pool.time_per_megapixel().expect("measured");
    let own = 16;
    // Half of what its decoding alone is estimated to take.
    let timeout = per_megapixel.mul_f64(own as f64 * 1024.0 * 1024.0 / 1e6 / 2.0);
    let long_shot = || request(vec![image.clone(); own], Some(timeout));

    // The first is admitted: only trying corrects an estimate.
    let first = {
        let (service, first) = (service.clone(), long_shot());
        tokio::spawn(async move { service.predict(first).await })
    };
    while !service.long_shot.load(Ordering::Acquire) {
        tokio::task::yield_now().await;
    }
    // While it runs, the next is refused at once, its estimate as Retry-After.
    let error = service.predict(long_shot()).await.unwrap_err();
    assert!(
        matches!(error, InferError::WouldMissDeadline { .. }),
        "{error}"
    );
    assert!(error.retry_after().expect("a Retry-After") > timeout);

    // Once the first is answered, another may try.
    let first = first.await.unwrap();
    assert!(
        !matches!(first, Err(InferError::WouldMissDeadline { .. })),
        "{first:?}"
    );
    assert!(!service.long_shot.load(Ordering::Acquire));
    let third = service.predict(long_shot()).await;
    assert!(
        !matches!(third, Err(InferError::WouldMissDeadline { .. })),
        "{third:?}"
    );
    served.stop().await;
}

/// A client-normalized image (no decode: straight to the model's queue)
/// whose values depend on `seed`.
fn tensor(seed: u8) -> Vec<f32> {
    let side = 224;
    (0..3 * side * side)
        .map(|i| f32::from(seed) + (i % 7) as f32 / 7.0)
        .collect()
}

fn classify(images: Vec<Vec<f32>>) -> ClassifyRequest {
    ClassifyRequest {
        model: MODEL.to_owned(),
        images: RequestImages::Normalized(images),
        timeout: None,
        client: None,
        features: false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_one_image_request_overtakes_an_earlier_many_image_one_in_the_model_queue() {
    // Batches of 4; the replica holds its first batch until the gate opens,
    // so both requests are queued before any batch after it is formed.
    let (served, gate) = fake::serve_gated(&[MODEL], &ServerConfig::default());
    let service = served.service.clone();
    let queue = &service.models[0].queue;
    let (done, mut order) = mpsc::unbounded_channel();

    let (big_service, big_done) = (service.clone(), done.clone());
    let big_task = tokio::spawn(async move {
        let images = (0..20).map(tensor).collect();
        let output = big_service.classify(classify(images)).await;
        big_done.send("big").unwrap();
        output
    });
    // Its first batch is held in the replica, the other 16 wait.
    while queue.depth() != 16 {
        tokio::task::yield_now().await;
    }
    let small_service = service.clone();
    let small_task = tokio::spawn(async move {
        let output = small_service.classify(classify(vec![tensor(99)])).await;
        done.send("small").unwrap();
        output
    });
    while queue.depth() != 17 {
        tokio::task::yield_now().await;
    }
    gate.open();

    // FIFO would answer the small one after all 20; the fair order puts it
    // in the second batch.
    assert_eq!(order.recv().await, Some("small"));
    assert_eq!(order.recv().await, Some("big"));
    let small = small_task.await.unwrap().unwrap();
    assert_eq!(small.batch_sizes, [4]);
    assert_eq!(big_task.await.unwrap().unwrap().probabilities.len(), 20);
    served.stop().await;
}
