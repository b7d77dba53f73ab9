//! Progress bars for the offline commands that read a whole journal (`verify`, `report`, `audit-export`): drawn on
//! stderr only when stderr is a terminal, so scripts, pipes and tests see exactly the output they saw without them.
//! The bar counts bytes of journal segments read (the journal's own progress reports), against their total size.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::path::Path;

/// A bar over the journal in `journal_dir`, labelled `message`; hidden unless stderr is a terminal.
pub fn journal(journal_dir: &Path, message: &'static str) -> ProgressBar {
    let visible = std::io::stderr().is_terminal();
    // The total is only for the bar: a journal that cannot be listed fails in the command itself.
    let total = if visible { otcd_journal::journal_bytes(journal_dir).unwrap_or(0) } else { 0 };
    bar(visible, total, message)
}

fn bar(visible: bool, total_bytes: u64, message: &'static str) -> ProgressBar {
    if !visible {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(total_bytes), ProgressDrawTarget::stderr());
    let style = ProgressStyle::with_template(
        "{msg} [{bar:32}] {binary_bytes}/{binary_total_bytes} ({binary_bytes_per_sec}, {eta} left)",
    )
    .expect("a valid progress template")
    .progress_chars("=> ");
    bar.set_style(style);
    bar.set_message(message);
    bar
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_a_terminal_the_bar_is_hidden_and_draws_nothing() {
        let hidden = bar(false, 1_000, "reading");
        assert!(hidden.is_hidden());
        hidden.set_position(500);
        hidden.finish_and_clear();
        let shown = bar(true, 1_000, "reading");
        assert_eq!(shown.length(), Some(1_000));
        assert_eq!(shown.message(), "reading");
    }
}
