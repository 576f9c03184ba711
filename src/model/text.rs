//! Prompt preparation for the umT5 encoder: the reference's text cleaning (an ftfy-style
//! repair, HTML unescaping twice, trimming, whitespace collapsing) and tokenisation with the
//! `tokenizers` crate from the checkpoint's `tokenizer.json`, padded / truncated to the text
//! length with pad id 0 and a 1/0 attention mask.

use std::path::{Path, PathBuf};

use tokenizers::{PaddingDirection, PaddingParams, PaddingStrategy, Tokenizer, TruncationParams};
use unicode_normalization::UnicodeNormalization;

/// Failure to load or apply the tokenizer.
#[derive(Debug, thiserror::Error)]
pub enum TextError {
    /// `tokenizer.json` could not be read or parsed.
    #[error("{file}: cannot load tokenizer: {reason}")]
    Load { file: PathBuf, reason: String },
    /// Tokenisation itself failed.
    #[error("tokenisation failed: {0}")]
    Encode(String),
}

/// Token ids and mask of one prompt, both `text_len` long.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenizedPrompt {
    /// Token ids, `</s>` (1) after the last real token, then pad id 0.
    pub ids: Vec<i64>,
    /// 1 for real tokens (including `</s>`), 0 for padding.
    pub mask: Vec<i64>,
}

impl TokenizedPrompt {
    /// Number of real tokens.
    pub fn len(&self) -> usize {
        self.mask.iter().filter(|&&m| m != 0).count()
    }

    /// Whether there is no real token.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Builds the padded form from unpadded ids (already ending with `</s>`): truncation keeps
    /// the first `text_len − 1` tokens and the final special token, padding uses id 0.
    pub fn from_ids(ids: &[i64], text_len: usize) -> Self {
        let mut kept: Vec<i64> = if ids.len() > text_len {
            let mut v = ids[..text_len.saturating_sub(1)].to_vec();
            if let Some(&last) = ids.last()
                && text_len > 0
            {
                v.push(last);
            }
            v
        } else {
            ids.to_vec()
        };
        let real = kept.len();
        kept.resize(text_len, 0);
        let mask = (0..text_len).map(|i| i64::from(i < real)).collect();
        Self { ids: kept, mask }
    }
}

/// umT5 tokenizer with the reference's cleaning and fixed-length padding.
pub struct PromptTokenizer {
    inner: Inner,
    text_len: usize,
}

enum Inner {
    /// The checkpoint's `tokenizer.json`.
    File(Box<Tokenizer>),
    /// The built-in demo model's stand-in: one id per UTF-8 byte of the cleaned prompt. It
    /// exists so the demo runs without any download; its ids mean nothing to a real umT5.
    Bytes { vocab_size: usize },
}

/// Ids below this are special in umT5 (`<pad>` 0, `</s>` 1, `<unk>` 2).
const FIRST_BYTE_ID: usize = 3;
const EOS_ID: i64 = 1;

impl PromptTokenizer {
    /// Loads `tokenizer.json` (from the `google/umt5-xxl` folder) for sequences of `text_len`.
    pub fn from_file(path: impl AsRef<Path>, text_len: usize) -> Result<Self, TextError> {
        let path = path.as_ref();
        let mut inner = Tokenizer::from_file(path).map_err(|e| TextError::Load {
            file: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        inner
            .with_truncation(Some(TruncationParams {
                max_length: text_len,
                ..Default::default()
            }))
            .map_err(|e| TextError::Load {
                file: path.to_path_buf(),
                reason: e.to_string(),
            })?;
        inner.with_padding(Some(PaddingParams {
            strategy: PaddingStrategy::Fixed(text_len),
            direction: PaddingDirection::Right,
            pad_id: 0,
            pad_token: "<pad>".into(),
            ..Default::default()
        }));
        Ok(Self {
            inner: Inner::File(Box::new(inner)),
            text_len,
        })
    }

    /// The demo model's byte-level tokenizer for a vocabulary of `vocab_size` ids.
    pub fn byte_level(vocab_size: usize, text_len: usize) -> Self {
        Self {
            inner: Inner::Bytes {
                vocab_size: vocab_size.max(FIRST_BYTE_ID + 1),
            },
            text_len,
        }
    }

    /// Sequence length of every output.
    pub fn text_len(&self) -> usize {
        self.text_len
    }

    /// Cleans and tokenises `prompt` (special tokens added: `</s>`).
    pub fn encode(&self, prompt: &str) -> Result<TokenizedPrompt, TextError> {
        let cleaned = clean_prompt(prompt);
        let inner = match &self.inner {
            Inner::File(tokenizer) => tokenizer,
            Inner::Bytes { vocab_size } => {
                let span = vocab_size - FIRST_BYTE_ID;
                let mut ids: Vec<i64> = cleaned
                    .bytes()
                    .map(|b| (FIRST_BYTE_ID + usize::from(b) % span) as i64)
                    .collect();
                ids.push(EOS_ID);
                return Ok(TokenizedPrompt::from_ids(&ids, self.text_len));
            }
        };
        let enc = inner
            .encode(cleaned, true)
            .map_err(|e| TextError::Encode(e.to_string()))?;
        Ok(TokenizedPrompt {
            ids: enc.get_ids().iter().map(|&i| i64::from(i)).collect(),
            mask: enc
                .get_attention_mask()
                .iter()
                .map(|&m| i64::from(m))
                .collect(),
        })
    }
}

/// The reference `_clean` in "whitespace" mode: `ftfy.fix_text`, `html.unescape` twice, strip,
/// collapse whitespace runs to one space.
pub fn clean_prompt(text: &str) -> String {
    let fixed = fix_text(text);
    let once = html_escape::decode_html_entities(&fixed).into_owned();
    let twice = html_escape::decode_html_entities(&once).into_owned();
    twice.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The parts of `ftfy.fix_text` that matter for prompts: undo UTF-8 read as Latin-1 /
/// Windows-1252 (mojibake), straighten curly quotes, expand Latin ligatures, map full-width
/// ASCII to ASCII, drop terminal escapes and stray control characters, normalise line breaks
/// and compose to NFC.
pub fn fix_text(text: &str) -> String {
    let text = remove_terminal_escapes(text);
    let text = fix_mojibake(&text);
    let mut out = String::with_capacity(text.len());
    let text = text
        .replace("\r\n", "\n")
        .replace(['\r', '\u{2028}', '\u{2029}', '\u{85}'], "\n");
    for ch in text.chars() {
        match ch {
            '\u{2018}' | '\u{2019}' | '\u{201A}' | '\u{201B}' => out.push('\''),
            '\u{201C}' | '\u{201D}' | '\u{201E}' | '\u{201F}' => out.push('"'),
            '\u{FB00}' => out.push_str("ff"),
            '\u{FB01}' => out.push_str("fi"),
            '\u{FB02}' => out.push_str("fl"),
            '\u{FB03}' => out.push_str("ffi"),
            '\u{FB04}' => out.push_str("ffl"),
            '\u{FB05}' | '\u{FB06}' => out.push_str("st"),
            '\u{3000}' => out.push(' '),
            c @ '\u{FF01}'..='\u{FF5E}' => {
                out.push(char::from_u32(c as u32 - 0xFF01 + 0x21).unwrap_or(c));
            }
            '\t' | '\n' => out.push(ch),
            c if c.is_control() => {}
            '\u{200B}' | '\u{FEFF}' => {}
            c => out.push(c),
        }
    }
    out.nfc().collect()
}

fn remove_terminal_escapes(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' && chars.peek() == Some(&'[') {
            chars.next();
            // CSI: parameters until a final byte in '@'..='~'.
            for n in chars.by_ref() {
                if ('@'..='~').contains(&n) {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Byte a character stands for when text was decoded as Windows-1252 (or Latin-1 for the
/// C1 range Windows-1252 leaves undefined).
fn cp1252_byte(c: char) -> Option<u8> {
    let u = c as u32;
    if u < 0x80 || (0xA0..=0xFF).contains(&u) || (0x80..=0x9F).contains(&u) {
        return u8::try_from(u).ok();
    }
    let b = match c {
        '€' => 0x80,
        '‚' => 0x82,
        'ƒ' => 0x83,
        '„' => 0x84,
        '…' => 0x85,
        '†' => 0x86,
        '‡' => 0x87,
        'ˆ' => 0x88,
        '‰' => 0x89,
        'Š' => 0x8A,
        '‹' => 0x8B,
        'Œ' => 0x8C,
        'Ž' => 0x8E,
        '‘' => 0x91,
        '’' => 0x92,
        '“' => 0x93,
        '”' => 0x94,
        '•' => 0x95,
        '–' => 0x96,
        '—' => 0x97,
        '˜' => 0x98,
        '™' => 0x99,
        'š' => 0x9A,
        '›' => 0x9B,
        'œ' => 0x9C,
        'ž' => 0x9E,
        'Ÿ' => 0x9F,
        _ => return None,
    };
    Some(b)
}

/// Re-decodes runs of characters that are the Windows-1252 / Latin-1 reading of UTF-8 bytes.
/// A run is only replaced when its bytes form valid UTF-8 containing a multi-byte sequence,
/// so ordinary accented text ("Café") is left alone.
fn fix_mojibake(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let lead = cp1252_byte(c).filter(|b| (0xC2..=0xF4).contains(b));
        if let Some(b0) = lead {
            let need = if b0 >= 0xF0 {
                4
            } else if b0 >= 0xE0 {
                3
            } else {
                2
            };
            if i + need <= chars.len() {
                let bytes: Option<Vec<u8>> =
                    chars[i..i + need].iter().map(|&c| cp1252_byte(c)).collect();
                if let Some(bytes) = bytes
                    && bytes[1..].iter().all(|b| (0x80..=0xBF).contains(b))
                    && let Ok(s) = std::str::from_utf8(&bytes)
                {
                    out.push_str(s);
                    i += need;
                    continue;
                }
            }
        }
        out.push(c);
        i += 1;
    }
    out
}
