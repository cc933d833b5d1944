//! `--all`'s chart: the machine's top growers, one line each (the floor points the verdict
//! judged: each the lowest sample of its stretch), in one plot on the run's clock, with a
//! legend that names each process and its verdict. Written at the end as memory.png.

use crate::error::Result;
use crate::report::chart::{ChartError, encode_png, register_fonts};
use crate::report::end::{EndReport, RunEnd, Written};
use crate::report::output::{Dest, write_atomic};
use crate::units::Elapsed;
use plotters::prelude::*;

/// The most lines drawn.
pub const MAX_LINES: usize = 6;

/// One unit's line.
#[derive(Clone, Debug)]
pub struct GrowerLine {
    /// `4242 leaky: growing (linear), +1.20 MiB/min`.
    pub label: String,
    pub t: Vec<f64>,
    pub v: Vec<f64>,
    pub growing: bool,
}

const PALETTE: [RGBColor; MAX_LINES] = [
    RGBColor(214, 39, 40),
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
];

/// Draws `lines` (at most `MAX_LINES`) under `title`; the PNG's bytes.
pub fn render_png(
    lines: &[GrowerLine],
    title: &str,
    size: (u32, u32),
) -> std::result::Result<Vec<u8>, ChartError> {
    let lines = &lines[..lines.len().min(MAX_LINES)];
    if lines.iter().all(|l| l.t.is_empty()) {
        return Err(ChartError::NoSamples);
    }
    register_fonts()?;
    let (width, height) = size;
    let t_max = lines
        .iter()
        .flat_map(|l| l.t.iter().copied())
        .fold(0.0f64, f64::max)
        .max(1.0);
    let v_max = lines
        .iter()
        .flat_map(|l| l.v.iter().copied())
        .fold(0.0f64, f64::max)
        .max(1.0);
    let (unit, unit_name) = [
        (1u64 << 30, "GiB"),
        (1 << 20, "MiB"),
        (1 << 10, "KiB"),
        (1, "B"),
    ]
    .into_iter()
    .find(|(u, _)| v_max >= *u as f64)
    .unwrap_or((1, "B"));
    let (tu, tu_name) = if t_max >= 3.0 * 3600.0 {
        (3600.0, "h")
    } else if t_max >= 180.0 {
        (60.0, "min")
    } else {
        (1.0, "s")
    };
    let mut rgb = vec![255u8; (width * height * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut rgb, size).into_drawing_area();
        root.fill(&WHITE)?;
        let scale = (f64::from(width) * f64::from(height) / (1280.0 * 720.0))
            .sqrt()
            .clamp(0.75, 2.0);
        let font = |px: f64| ("sans-serif", (px * scale).round());
        let mut chart = ChartBuilder::on(&root)
            .caption(title, font(22.0))
            .margin((18.0 * scale) as u32)
            .x_label_area_size((48.0 * scale) as u32)
            .y_label_area_size((100.0 * scale) as u32)
            .build_cartesian_2d(0.0..t_max / tu * 1.02, 0.0..v_max / unit as f64 * 1.1)?;
        chart
            .configure_mesh()
            .light_line_style(TRANSPARENT)
            .label_style(font(14.0))
            .x_desc(format!("time ({tu_name})"))
            .y_desc(unit_name)
            .draw()?;
        for (i, line) in lines.iter().enumerate() {
            let color = PALETTE[i % PALETTE.len()];
            let width = if line.growing { 3 } else { 2 };
            chart
                .draw_series(LineSeries::new(
                    line.t
                        .iter()
                        .zip(&line.v)
                        .map(|(&t, &v)| (t / tu, v / unit as f64)),
                    color.stroke_width(width),
                ))?
                .label(line.label.clone())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(width))
                });
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .label_font(font(14.0))
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()?;
        root.present()?;
    }
    encode_png(&rgb, size)
}

/// The chart as an end report.
pub struct GrowersChart {
    pub dest: Dest,
    pub size: (u32, u32),
    pub lines: Vec<GrowerLine>,
    /// How long the run was, for the title.
    pub duration_s: f64,
}

impl EndReport for GrowersChart {
    fn name(&self) -> String {
        format!("the chart '{}'", self.dest.display())
    }

    fn write(&self, end: &RunEnd<'_>) -> Result<Written> {
        let s = end.summary;
        let (judged, growing) = s.machine.as_ref().map_or((0, 0), |m| (m.judged, m.growing));
        let title = format!(
            "memwatch --all: the top growers ({judged} judged, {growing} growing, {})",
            Elapsed(self.duration_s)
        );
        match render_png(&self.lines, &title, self.size) {
            Ok(bytes) => {
                write_atomic(&self.dest, &bytes)?;
                Ok(self
                    .dest
                    .file()
                    .map_or(Written::Elsewhere, |p| Written::File(p.to_path_buf())))
            }
            Err(e) => Ok(Written::Skipped(format!("no chart: {e}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_a_png_of_the_size_asked() {
        let lines = vec![
            GrowerLine {
                label: "4242 leaky: growing (linear)".into(),
                t: (0..60).map(f64::from).collect(),
                v: (0..60).map(|i| f64::from(10 + i) * 1048576.0).collect(),
                growing: true,
            },
            GrowerLine {
                label: "7 steady: stable (flat)".into(),
                t: (0..60).map(f64::from).collect(),
                v: vec![20.0 * 1048576.0; 60],
                growing: false,
            },
        ];
        let png = render_png(&lines, "top growers", (640, 360)).expect("drawn");
        let decoder = png::Decoder::new(std::io::Cursor::new(png));
        let reader = decoder.read_info().expect("a PNG");
        assert_eq!((reader.info().width, reader.info().height), (640, 360));
        assert!(matches!(
            render_png(&[], "none", (640, 360)),
            Err(ChartError::NoSamples)
        ));
    }
}
