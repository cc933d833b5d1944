//! The flame graph of the native stacks: an SVG drawn from the folded stacks (inferno).

/// Renders `folded` (`frame;frame;... bytes` lines) as an SVG flame graph: each box is a
/// function, its width the bytes of new pages under it.
pub fn svg(folded: &str, title: &str) -> Result<Vec<u8>, String> {
    let mut options = inferno::flamegraph::Options::default();
    options.title = title.to_string();
    options.count_name = "bytes".to_string();
    options.name_type = "Function:".to_string();
    options.colors =
        inferno::flamegraph::Palette::Basic(inferno::flamegraph::color::BasicPalette::Mem);
    let mut out = Vec::new();
    inferno::flamegraph::from_lines(&mut options, folded.lines(), &mut out)
        .map_err(|e| e.to_string())?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn draws_the_functions() {
        let svg = super::svg("main;leak_session;malloc 4096\nmain;churn 100\n", "t").expect("svg");
        let text = String::from_utf8(svg).expect("utf-8");
        assert!(text.starts_with("<?xml"));
        assert!(text.contains("leak_session"));
    }
}
