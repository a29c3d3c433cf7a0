//! One-line messages for errors and their chains of causes, for binaries to print.

use std::error::Error;

/// Returns `error`'s message followed by each cause that the text so far does not already
/// contain, joined by `": "`.
///
/// Most handgrad errors repeat their cause's message in their own, and still return the cause
/// from [`Error::source`] so that callers can inspect it. Printing the whole chain would then
/// show the same text twice; skipping causes already present avoids that.
pub fn describe(error: &(dyn Error + 'static)) -> String {
    let mut message = error.to_string();
    let mut cause = error.source();
    while let Some(current) = cause {
        let text = current.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        cause = current.source();
    }
    message
}

#[cfg(test)]
mod tests {
    use std::fmt;

    use super::*;

    #[derive(Debug)]
    struct Layer {
        message: String,
        source: Option<Box<Layer>>,
    }

    impl fmt::Display for Layer {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(&self.message)
        }
    }

    impl Error for Layer {
        fn source(&self) -> Option<&(dyn Error + 'static)> {
            self.source.as_deref().map(|layer| layer as &(dyn Error + 'static))
        }
    }

    fn chain(messages: &[&str]) -> Layer {
        let mut layer: Option<Box<Layer>> = None;
        for message in messages.iter().rev() {
            layer = Some(Box::new(Layer { message: message.to_string(), source: layer }));
        }
        *layer.expect("at least one message")
    }

    #[test]
    fn repeated_cause_is_skipped() {
        let error = chain(&["checkpoint a.bin: No such file", "No such file"]);
        assert_eq!(describe(&error), "checkpoint a.bin: No such file");
    }

    #[test]
    fn new_causes_are_appended() {
        let error = chain(&["training failed", "checkpoint a.bin: bad header", "bad header"]);
        assert_eq!(describe(&error), "training failed: checkpoint a.bin: bad header");
    }

    #[test]
    fn single_error_is_its_message() {
        assert_eq!(describe(&chain(&["invalid scale 0"])), "invalid scale 0");
    }
}
