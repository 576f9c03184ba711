//! Prompt preparation: the reference's cleaning examples from the manifest, the padding /
//! truncation semantics against the fixture ids and masks, and a real `tokenizers` pipeline on
//! a small tokenizer.json built here (the umT5 one is not available offline).

mod common;

use avatar_studio::model::text::{PromptTokenizer, TokenizedPrompt, clean_prompt};
use common::encoder_fixtures::*;

#[test]
fn cleaning_examples_from_manifest() {
    let m = manifest();
    let examples = m["components"]["t5"]["text_clean_examples"]
        .as_array()
        .expect("examples");
    assert!(!examples.is_empty());
    for ex in examples {
        let raw = ex[0].as_str().expect("raw");
        let want = ex[1].as_str().expect("cleaned");
        assert_eq!(clean_prompt(raw), want, "cleaning {raw:?}");
    }
}

#[test]
fn padding_matches_fixture_ids_and_masks() {
    let io = open("t5/t5_io.safetensors");
    for (ids_key, mask_key) in [("ids", "mask"), ("long.ids", "long.mask")] {
        let (shape, ids) = io.load_i64(ids_key).expect("ids");
        let (_, mask) = io.load_i64(mask_key).expect("mask");
        let len = shape[1];
        for (row_ids, row_mask) in ids.chunks(len).zip(mask.chunks(len)) {
            let real: Vec<i64> = row_ids
                .iter()
                .zip(row_mask)
                .filter(|(_, m)| **m != 0)
                .map(|(i, _)| *i)
                .collect();
            assert_eq!(real.last(), Some(&1), "last real token is </s>");
            let p = TokenizedPrompt::from_ids(&real, len);
            assert_eq!(p.ids, row_ids);
            assert_eq!(p.mask, row_mask);
        }
    }
}

#[test]
fn truncation_keeps_the_end_token() {
    let ids: Vec<i64> = (2..40).chain(std::iter::once(1)).collect();
    let p = TokenizedPrompt::from_ids(&ids, 16);
    assert_eq!(p.ids.len(), 16);
    assert_eq!(p.ids[15], 1);
    assert_eq!(p.ids[..15], ids[..15]);
    assert_eq!(p.len(), 16);
}

fn tiny_tokenizer_json() -> String {
    serde_json::json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": [
            {"id": 0, "content": "<pad>", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true},
            {"id": 1, "content": "</s>", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true}
        ],
        "normalizer": null,
        "pre_tokenizer": {"type": "Whitespace"},
        "post_processor": {
            "type": "TemplateProcessing",
            "single": [{"Sequence": {"id": "A", "type_id": 0}}, {"SpecialToken": {"id": "</s>", "type_id": 0}}],
            "pair": [{"Sequence": {"id": "A", "type_id": 0}}, {"SpecialToken": {"id": "</s>", "type_id": 0}}],
            "special_tokens": {"</s>": {"id": "</s>", "ids": [1], "tokens": ["</s>"]}}
        },
        "decoder": null,
        "model": {
            "type": "WordLevel",
            "vocab": {"<pad>": 0, "</s>": 1, "<unk>": 2, "a": 3, "person": 4, "&": 5, "talking": 6, "to": 7, "the": 8, "camera": 9},
            "unk_token": "<unk>"
        }
    })
    .to_string()
}

#[test]
fn tokenizer_cleans_pads_and_truncates() {
    let dir = std::env::temp_dir().join(format!("avatar-studio-tok-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let path = dir.join("tokenizer.json");
    std::fs::write(&path, tiny_tokenizer_json()).expect("write");

    let tok = PromptTokenizer::from_file(&path, 10).unwrap_or_else(|e| panic!("{e}"));
    let p = tok
        .encode("  a  person &amp; talking\n\tto the camera  ")
        .expect("encode");
    assert_eq!(p.ids, vec![3, 4, 5, 6, 7, 8, 9, 1, 0, 0]);
    assert_eq!(p.mask, vec![1, 1, 1, 1, 1, 1, 1, 1, 0, 0]);

    let short = PromptTokenizer::from_file(&path, 4).unwrap_or_else(|e| panic!("{e}"));
    let p = short
        .encode("a person talking to the camera")
        .expect("encode");
    assert_eq!(p.ids, vec![3, 4, 6, 1], "truncation keeps </s> last");
    assert_eq!(p.mask, vec![1, 1, 1, 1]);
    let _ = std::fs::remove_dir_all(&dir);
}
