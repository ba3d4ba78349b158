//! From class probabilities to the labelled top-k objects that `classify`
//! prints and the HTTP API returns.

use serde::Serialize;

use crate::model::ModelId;

/// One ranked class, exactly as `classify` prints it and the API returns it.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct ClassScore {
    pub class_id: usize,
    pub label: String,
    pub probability: f32,
}

/// The `k` most probable classes of `model`, labelled with its labels, most
/// probable first; ties keep the lower id first, as a stable sort would.
pub fn top_k(probabilities: &[f32], k: usize, model: ModelId) -> Vec<ClassScore> {
    let mut ranked: Vec<usize> = (0..probabilities.len()).collect();
    let k = k.min(ranked.len());
    let by_probability_desc = |a: &usize, b: &usize| {
        probabilities[*b]
            .total_cmp(&probabilities[*a])
            .then(a.cmp(b))
    };
    if k < ranked.len() && k > 0 {
        ranked.select_nth_unstable_by(k - 1, by_probability_desc);
    }
    ranked.truncate(k);
    ranked.sort_by(by_probability_desc);
    ranked
        .into_iter()
        .map(|class_id| ClassScore {
            class_id,
            label: model.label(class_id).unwrap_or("unknown").to_string(),
            probability: probabilities[class_id],
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn returns_the_k_largest_in_descending_order_with_labels() {
        let mut probabilities = vec![0.0f32; 1000];
        probabilities[285] = 0.5;
        probabilities[1] = 0.3;
        probabilities[7] = 0.2;
        let top = top_k(&probabilities, 2, ModelId::SeResNeXt50_32x4d);
        assert_eq!(top.len(), 2);
        assert_eq!(
            (top[0].class_id, top[0].label.as_str()),
            (285, "Egyptian cat")
        );
        assert_eq!(top[1].class_id, 1);
        assert_eq!(top[1].probability, 0.3);
    }

    #[test]
    fn k_larger_than_the_classes_returns_all_and_ties_keep_id_order() {
        let top = top_k(&[0.25, 0.5, 0.25], 10, ModelId::SeResNeXt50_32x4d);
        let ids: Vec<_> = top.iter().map(|c| c.class_id).collect();
        assert_eq!(ids, [1, 0, 2]);
        assert!(top_k(&[0.1, 0.9], 0, ModelId::SeResNeXt50_32x4d).is_empty());
    }
}
