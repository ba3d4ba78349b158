use bytes::Bytes;

use super::*;
use crate::infer::fake::{self, fake_features};
use crate::infer::PredictRequest;

const MODEL: &str = "gluon_seresnext50_32x4d";

fn png(seed: u8) -> Bytes {
    let image = image::RgbImage::from_fn(40, 30, |x, y| {
        image::Rgb([(x as u8) ^ seed, (y as u8).wrapping_add(seed), seed])
    });
    let mut bytes = std::io::Cursor::new(Vec::new());
    image
        .write_to(&mut bytes, image::ImageFormat::Png)
        .expect("encode a PNG");
    Bytes::from(bytes.into_inner())
}

fn request(images: Vec<Bytes>, normalize: bool) -> EmbedRequest {
    EmbedRequest {
        model: MODEL.to_owned(),
        images,
        normalize,
        timeout: None,
        client: None,
    }
}

#[test]
fn l2_normalize_gives_unit_norm_and_leaves_zero_alone() {
    let mut values = [3.0f32, 4.0];
    l2_normalize(&mut values);
    assert_eq!(values, [0.6, 0.8]);
    let mut zeros = [0.0f32; 4];
    l2_normalize(&mut zeros);
    assert_eq!(zeros, [0.0; 4]);
}

#[tokio::test]
async fn embeddings_are_the_images_features_in_request_order_raw_or_normalized() {
    let served = fake::serve(&[MODEL]);
    let images = vec![png(1), png(2)];
    let raw = served
        .service
        .embed(request(images.clone(), false))
        .await
        .expect("embed");
    let predicted = served
        .service
        .predict(PredictRequest {
            model: MODEL.to_owned(),
            images: images.clone(),
            top_k: 1,
            timeout: None,
            client: None,
        })
        .await
        .expect("predict");
    assert!(!raw.normalized);
    assert_eq!(raw.embeddings.len(), 2);
    for (embedding, prediction) in raw.embeddings.iter().zip(&predicted.predictions) {
        assert_eq!(*embedding, fake_features(prediction[0].class_id));
    }
    let unit = served
        .service
        .embed(request(images, true))
        .await
        .expect("embed");
    assert!(unit.normalized);
    for (unit, raw) in unit.embeddings.iter().zip(&raw.embeddings) {
        let scaled: Vec<f32> = raw.iter().map(|v| v / 5.0).collect();
        assert_eq!(*unit, scaled);
    }
    served.stop().await;
}

#[tokio::test]
async fn an_embed_request_is_refused_like_a_predict_request() {
    let served = fake::serve(&[MODEL]);
    let error = served
        .service
        .embed(request(Vec::new(), true))
        .await
        .expect_err("no images");
    assert!(matches!(error, InferError::NoImages), "{error}");
    served.stop().await;
}
