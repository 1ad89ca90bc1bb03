//! Text a client chooses and the user reads (its `client_name` on the consent page): refused
//! when it holds characters that disguise what is shown. Bidirectional controls (U+202E turns
//! "Evil Corp\u{202E}moc.elgoog" into what reads as a trusted name), invisible and zero-width
//! characters (a name that looks like another's), other format characters (Unicode category
//! Cf), variation selectors, line separators and control characters.

/// Why a piece of display text was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Disguise {
    /// A control character (C0, C1, DEL).
    Control(char),
    /// A bidirectional control, format, invisible or zero-width character.
    Invisible(char),
}

impl std::fmt::Display for Disguise {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Disguise::Control(c) => write!(f, "a control character (U+{:04X})", u32::from(*c)),
            Disguise::Invisible(c) => {
                write!(f, "an invisible or text-direction character (U+{:04X})", u32::from(*c))
            }
        }
    }
}

/// Code points that are not shown as themselves: the format characters (general category Cf,
/// Unicode 16), and the invisible letters, fillers, joiners and selectors outside it.
const INVISIBLE: &[(u32, u32)] = &[
    (0x00AD, 0x00AD), // soft hyphen
    (0x034F, 0x034F), // combining grapheme joiner
    (0x0600, 0x0605), // Arabic number signs
    (0x061C, 0x061C), // Arabic letter mark
    (0x06DD, 0x06DD),
    (0x070F, 0x070F),
    (0x0890, 0x0891),
    (0x08E2, 0x08E2),
    (0x115F, 0x1160), // Hangul fillers
    (0x17B4, 0x17B5), // Khmer inherent vowels
    (0x180B, 0x180F), // Mongolian selectors and vowel separator
    (0x200B, 0x200F), // zero-width space, (non-)joiners, LRM, RLM
    (0x2028, 0x202E), // line/paragraph separators, bidi embeddings and overrides
    (0x2060, 0x206F), // word joiner, invisible operators, bidi isolates, deprecated formats
    (0x2800, 0x2800), // braille blank
    (0x3164, 0x3164), // Hangul filler
    (0xFE00, 0xFE0F), // variation selectors
    (0xFEFF, 0xFEFF), // zero-width no-break space
    (0xFFA0, 0xFFA0), // halfwidth Hangul filler
    (0xFFF9, 0xFFFB), // interlinear annotation
    (0x110BD, 0x110BD),
    (0x110CD, 0x110CD),
    (0x13430, 0x1343F), // Egyptian hieroglyph format controls
    (0x1BCA0, 0x1BCA3), // shorthand format controls
    (0x1D173, 0x1D17A), // musical symbol format controls
    (0xE0000, 0xE0FFF), // tags and variation selectors supplement
];

/// The first disguising character of `text`, if any.
pub(crate) fn disguise(text: &str) -> Option<Disguise> {
    text.chars().find_map(|c| {
        if c.is_control() {
            return Some(Disguise::Control(c));
        }
        let code = u32::from(c);
        INVISIBLE.iter().any(|(low, high)| (*low..=*high).contains(&code)).then_some(Disguise::Invisible(c))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_people_write_pass() {
        for name in
            ["Claude Code", "VS Code — Insiders", "Zürich Tools", "東京 Client", "مساعد", "🤖 Bot", "ÆØÅ"]
        {
            assert_eq!(disguise(name), None, "{name}");
        }
    }

    #[test]
    fn direction_overrides_invisible_and_control_characters_are_refused() {
        let cases = [
            ("Evil\u{202E}elgooG", Disguise::Invisible('\u{202E}')),
            ("Goo\u{200B}gle", Disguise::Invisible('\u{200B}')),
            ("a\u{2066}b\u{2069}", Disguise::Invisible('\u{2066}')),
            ("\u{FEFF}Google", Disguise::Invisible('\u{FEFF}')),
            ("Goog\u{00AD}le", Disguise::Invisible('\u{00AD}')),
            ("x\u{E0041}", Disguise::Invisible('\u{E0041}')),
            ("\u{3164}", Disguise::Invisible('\u{3164}')),
            ("a\u{2028}b", Disguise::Invisible('\u{2028}')),
            ("a\u{FE0F}", Disguise::Invisible('\u{FE0F}')),
            ("line\nbreak", Disguise::Control('\n')),
            ("c1\u{0085}", Disguise::Control('\u{0085}')),
        ];
        for (text, expected) in cases {
            assert_eq!(disguise(text), Some(expected), "{text:?}");
        }
        assert_eq!(
            Disguise::Invisible('\u{202E}').to_string(),
            "an invisible or text-direction character (U+202E)"
        );
    }
}
