//! `rootforge compare --plot`: image size against build time as a
//! self-contained SVG scatter plot, one labelled point per image: rootforge's
//! filled circles, peer tools' hollow squares, a caption of the machine and
//! versions under it.

use std::fmt::Write as _;

/// One image.
#[derive(Debug, Clone)]
pub struct Point {
    pub label: String,
    /// The format: points of one group share a colour.
    pub group: String,
    /// Build time, seconds.
    pub x: f64,
    /// Image size, MiB.
    pub y: f64,
    /// A peer tool's point (a hollow square), not rootforge's (a dot).
    pub peer: bool,
}

const WIDTH: f64 = 1000.0;
const HEIGHT: f64 = 680.0;
const LEFT: f64 = 80.0;
const RIGHT: f64 = 30.0;
const TOP: f64 = 50.0;
const BOTTOM: f64 = 60.0;
/// Each caption line's height under the plot.
const CAPTION_LINE: f64 = 15.0;
const FONT: f64 = 11.0;
/// A rough advance per character at `FONT` in a sans-serif face, for
/// keeping labels apart.
const CHAR_WIDTH: f64 = 6.2;
/// Build times spanning more than this factor get a logarithmic axis.
const LOG_SPREAD: f64 = 20.0;
/// The shortest build time a log axis shows.
const MIN_SECS: f64 = 1e-4;

const PALETTE: [&str; 8] = [
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
];

/// The x axis: linear from 0, or logarithmic over the times' decades.
enum Scale {
    Linear { max: f64 },
    Log { lo: f64, hi: f64 },
}

impl Scale {
    fn new(xs: &[f64]) -> Scale {
        let max = xs.iter().copied().fold(0.0, f64::max);
        let min = xs
            .iter()
            .copied()
            .fold(f64::INFINITY, f64::min)
            .max(MIN_SECS);
        if max > 0.0 && max / min > LOG_SPREAD {
            Scale::Log {
                lo: min.log10().floor(),
                hi: max.log10().ceil(),
            }
        } else {
            Scale::Linear { max: nice_max(max) }
        }
    }

    /// Where `x` falls, from 0 (left) to 1 (right).
    fn fraction(&self, x: f64) -> f64 {
        match *self {
            Scale::Linear { max } => x / max,
            Scale::Log { lo, hi } => (x.max(MIN_SECS).log10() - lo) / (hi - lo),
        }
    }

    fn ticks(&self) -> Vec<f64> {
        match *self {
            Scale::Linear { max } => linear_ticks(max),
            Scale::Log { lo, hi } => {
                // Decades, with 2 and 5 between them when there are few.
                let steps: &[f64] = if hi - lo <= 2.0 {
                    &[1.0, 2.0, 5.0]
                } else {
                    &[1.0]
                };
                let mut t = Vec::new();
                let mut e = lo;
                while e <= hi {
                    for s in steps {
                        let v = s * 10f64.powf(e);
                        if v <= 10f64.powf(hi) * 1.0001 {
                            t.push(v);
                        }
                    }
                    e += 1.0;
                }
                t
            }
        }
    }
}

/// The smallest 1, 2 or 5 × 10^k at or above `max` (1 for nothing).
fn nice_max(max: f64) -> f64 {
    if max <= 0.0 || !max.is_finite() {
        return 1.0;
    }
    let step = nice_step(max / 5.0);
    (max / step).ceil() * step
}

/// A tick step of 1, 2 or 5 × 10^k near `raw`.
fn nice_step(raw: f64) -> f64 {
    let mag = 10f64.powf(raw.log10().floor());
    let f = raw / mag;
    let nice = if f <= 1.0 {
        1.0
    } else if f <= 2.0 {
        2.0
    } else if f <= 5.0 {
        5.0
    } else {
        10.0
    };
    nice * mag
}

/// Ticks from 0 to `max` (a value from [`nice_max`]).
fn linear_ticks(max: f64) -> Vec<f64> {
    let step = nice_step(max / 5.0);
    let n = (max / step).round() as u32;
    (0..=n).map(|i| f64::from(i) * step).collect()
}

/// A tick value with as many decimals as its magnitude needs.
fn tick_text(v: f64) -> String {
    if v == 0.0 || v >= 1.0 {
        let s = format!("{v:.1}");
        s.strip_suffix(".0").map(str::to_owned).unwrap_or(s)
    } else {
        let decimals = (-v.log10().floor()) as usize;
        format!("{v:.decimals$}")
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A label's box, for keeping labels from overlapping.
#[derive(Clone, Copy)]
struct Box2 {
    x0: f64,
    y0: f64,
    x1: f64,
    y1: f64,
}

impl Box2 {
    fn overlaps(&self, o: &Box2) -> bool {
        self.x0 < o.x1 && o.x0 < self.x1 && self.y0 < o.y1 && o.y0 < self.y1
    }
}

/// Where a label `w` wide goes for the point at (`x`, `y`): beside it if
/// there is room, else the nearest free place in widening rings around it,
/// else beside it regardless.
fn place_label(x: f64, y: f64, w: f64, area: &Box2, placed: &[Box2]) -> Box2 {
    let h = FONT + 2.0;
    let at = |dx: f64, dy: f64| Box2 {
        x0: x + dx,
        y0: y + dy - h / 2.0,
        x1: x + dx + w,
        y1: y + dy + h / 2.0,
    };
    let free = |b: &Box2| {
        b.x0 >= area.x0
            && b.x1 <= area.x1
            && b.y0 >= area.y0
            && b.y1 <= area.y1
            && !placed.iter().any(|o| o.overlaps(b))
    };
    let right = 7.0;
    let left = -7.0 - w;
    let mut tries = vec![(right, 0.0), (left, 0.0), (-w / 2.0, -h), (-w / 2.0, h)];
    for ring in 1..=12 {
        let r = f64::from(ring);
        let dy = r * h;
        let dx = r * 12.0;
        tries.extend([
            (right, -dy),
            (right, dy),
            (left, -dy),
            (left, dy),
            (right + dx, -dy),
            (right + dx, dy),
            (left - dx, -dy),
            (left - dx, dy),
        ]);
    }
    tries
        .into_iter()
        .map(|(dx, dy)| at(dx, dy))
        .find(free)
        .unwrap_or_else(|| at(right, 0.0))
}

/// `lines` broken after `; ` to hold at most `max` characters where they can.
fn wrap(lines: &[String], max: usize) -> Vec<String> {
    let mut out = Vec::new();
    for line in lines {
        let mut cur = String::new();
        for part in line.split_inclusive("; ") {
            if !cur.is_empty() && cur.chars().count() + part.chars().count() > max {
                out.push(cur.trim_end().to_owned());
                cur = String::new();
            }
            cur.push_str(part);
        }
        if !cur.is_empty() {
            out.push(cur.trim_end().to_owned());
        }
    }
    out
}

/// The plot of `points` under `title`, with `caption` lines below.
pub fn svg(title: &str, caption: &[String], points: &[Point]) -> String {
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let caption = wrap(caption, ((WIDTH - LEFT - 10.0) / CHAR_WIDTH) as usize);
    let full_h = HEIGHT + CAPTION_LINE * caption.len() as f64 + 6.0;
    let any_peer = points.iter().any(|p| p.peer);
    let xs: Vec<f64> = points.iter().map(|p| p.x).collect();
    let scale = Scale::new(&xs);
    let y_max = nice_max(points.iter().map(|p| p.y).fold(0.0, f64::max));
    let px = |x: f64| LEFT + scale.fraction(x) * plot_w;
    let py = |y: f64| TOP + plot_h - y / y_max * plot_h;

    let mut groups: Vec<&str> = Vec::new();
    for p in points {
        if !groups.contains(&p.group.as_str()) {
            groups.push(&p.group);
        }
    }
    let colour = |g: &str| {
        let i = groups.iter().position(|x| *x == g).unwrap_or(0);
        PALETTE[i % PALETTE.len()]
    };

    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{full_h}" viewBox="0 0 {WIDTH} {full_h}" font-family="sans-serif" font-size="{FONT}">"#
    );
    let _ = writeln!(
        s,
        r#"<rect width="{WIDTH}" height="{full_h}" fill="white"/>"#
    );
    for (i, line) in caption.iter().enumerate() {
        let _ = writeln!(
            s,
            r##"<text x="{LEFT}" y="{:.1}" fill="#444">{}</text>"##,
            HEIGHT + CAPTION_LINE * i as f64,
            escape(line)
        );
    }
    let _ = writeln!(
        s,
        r#"<text x="{}" y="28" text-anchor="middle" font-size="16">{}</text>"#,
        WIDTH / 2.0,
        escape(title)
    );

    // Grid, ticks and axis titles.
    let bottom = TOP + plot_h;
    for t in scale.ticks() {
        let x = px(t);
        let _ = writeln!(
            s,
            r##"<line x1="{x:.1}" y1="{TOP}" x2="{x:.1}" y2="{bottom}" stroke="#e4e4e4"/><text x="{x:.1}" y="{:.1}" text-anchor="middle">{}</text>"##,
            bottom + 16.0,
            tick_text(t)
        );
    }
    for t in linear_ticks(y_max) {
        let y = py(t);
        let _ = writeln!(
            s,
            r##"<line x1="{LEFT}" y1="{y:.1}" x2="{}" y2="{y:.1}" stroke="#e4e4e4"/><text x="{}" y="{:.1}" text-anchor="end">{}</text>"##,
            LEFT + plot_w,
            LEFT - 6.0,
            y + 4.0,
            tick_text(t)
        );
    }
    let _ = writeln!(
        s,
        r#"<rect x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}" fill="none" stroke="black"/>"#
    );
    let x_title = match scale {
        Scale::Linear { .. } => "build time (s)",
        Scale::Log { .. } => "build time (s, log scale)",
    };
    let _ = writeln!(
        s,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle" font-size="13">{x_title}</text>"#,
        LEFT + plot_w / 2.0,
        HEIGHT - 18.0
    );
    let _ = writeln!(
        s,
        r#"<text transform="translate(22 {:.1}) rotate(-90)" text-anchor="middle" font-size="13">image size (MiB)</text>"#,
        TOP + plot_h / 2.0
    );

    // The legend takes the top right corner; labels keep out of it.
    let legend_w = if any_peer { 110.0 } else { 90.0 };
    let styles = if any_peer { 2.0 } else { 0.0 };
    let legend = Box2 {
        x0: LEFT + plot_w - legend_w - 8.0,
        y0: TOP + 8.0,
        x1: LEFT + plot_w - 8.0,
        y1: TOP + 8.0 + 16.0 * (groups.len() as f64 + styles) + 6.0,
    };
    let _ = writeln!(
        s,
        r##"<rect x="{:.1}" y="{:.1}" width="{legend_w}" height="{:.1}" fill="white" stroke="#999"/>"##,
        legend.x0,
        legend.y0,
        legend.y1 - legend.y0
    );
    for (i, g) in groups.iter().enumerate() {
        let y = legend.y0 + 14.0 + 16.0 * i as f64;
        let _ = writeln!(
            s,
            r#"<rect x="{:.1}" y="{:.1}" width="10" height="10" fill="{}"/><text x="{:.1}" y="{:.1}">{g}</text>"#,
            legend.x0 + 8.0,
            y - 9.0,
            colour(g),
            legend.x0 + 24.0,
            y
        );
    }
    if any_peer {
        let y = legend.y0 + 14.0 + 16.0 * groups.len() as f64;
        let _ = writeln!(
            s,
            r##"<circle cx="{:.1}" cy="{:.1}" r="4" fill="#555"/><text x="{:.1}" y="{y:.1}">rootforge</text>"##,
            legend.x0 + 13.0,
            y - 4.0,
            legend.x0 + 24.0
        );
        let y = y + 16.0;
        let _ = writeln!(
            s,
            r##"<rect x="{:.1}" y="{:.1}" width="9" height="9" fill="white" stroke="#555" stroke-width="2"/><text x="{:.1}" y="{y:.1}">peer tool</text>"##,
            legend.x0 + 8.5,
            y - 8.5,
            legend.x0 + 24.0
        );
    }

    // Points first, then labels placed greedily away from the points, the
    // legend and each other, with a leader line when pushed far off.
    let dots: Vec<(f64, f64)> = points.iter().map(|p| (px(p.x), py(p.y))).collect();
    let mut placed = vec![legend];
    placed.extend(dots.iter().map(|&(x, y)| Box2 {
        x0: x - 4.0,
        y0: y - 4.0,
        x1: x + 4.0,
        y1: y + 4.0,
    }));
    let area = Box2 {
        x0: LEFT,
        y0: TOP,
        x1: WIDTH - 2.0,
        y1: bottom,
    };
    let mut labels = String::new();
    for (p, &(x, y)) in points.iter().zip(&dots) {
        if p.peer {
            let _ = writeln!(
                s,
                r#"<rect x="{:.1}" y="{:.1}" width="9" height="9" fill="white" stroke="{}" stroke-width="2"><title>{}: {:.2} MiB in {:.3} s</title></rect>"#,
                x - 4.5,
                y - 4.5,
                colour(&p.group),
                escape(&p.label),
                p.y,
                p.x
            );
        } else {
            let _ = writeln!(
                s,
                r#"<circle cx="{x:.1}" cy="{y:.1}" r="4" fill="{}"><title>{}: {:.2} MiB in {:.3} s</title></circle>"#,
                colour(&p.group),
                escape(&p.label),
                p.y,
                p.x
            );
        }
        let w = CHAR_WIDTH * p.label.chars().count() as f64;
        let b = place_label(x, y, w, &area, &placed);
        placed.push(b);
        let (lx, ly) = (b.x0, b.y1 - 3.0);
        let near = (b.x0 - x).abs().min((b.x1 - x).abs()) < 10.0 && (ly - y).abs() < 12.0;
        if !near {
            // From the point to the nearer end of the label.
            let ex = if (b.x0 - x).abs() < (b.x1 - x).abs() {
                b.x0
            } else {
                b.x1
            };
            let _ = writeln!(
                labels,
                r##"<line x1="{x:.1}" y1="{y:.1}" x2="{ex:.1}" y2="{:.1}" stroke="#888" stroke-width="0.6"/>"##,
                b.y1 - FONT / 2.0
            );
        }
        let _ = writeln!(
            labels,
            r##"<text x="{lx:.1}" y="{ly:.1}" fill="#222">{}</text>"##,
            escape(&p.label)
        );
    }
    s.push_str(&labels);
    s.push_str("</svg>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_round_and_cover_the_range() {
        assert_eq!(nice_max(7.3), 8.0);
        assert_eq!(nice_max(0.0), 1.0);
        assert_eq!(linear_ticks(8.0), [0.0, 2.0, 4.0, 6.0, 8.0]);
        let log = Scale::new(&[0.02, 3.0]);
        assert!(matches!(log, Scale::Log { lo, hi } if lo == -2.0 && hi == 1.0));
        assert_eq!(log.ticks(), [0.01, 0.1, 1.0, 10.0]);
        assert!(matches!(Scale::new(&[1.0, 3.0]), Scale::Linear { max } if max == 3.0));
        assert_eq!(tick_text(0.05), "0.05");
        assert_eq!(tick_text(20.0), "20");
    }

    #[test]
    fn captions_wrap_between_items() {
        let lines = ["aaaa; bbbb; cccc".to_owned(), "dd".to_owned()];
        assert_eq!(wrap(&lines, 12), ["aaaa; bbbb;", "cccc", "dd"]);
        assert_eq!(wrap(&lines, 11), ["aaaa;", "bbbb; cccc", "dd"]);
        assert_eq!(wrap(&lines, 100), ["aaaa; bbbb; cccc", "dd"]);
    }

    #[test]
    fn one_circle_per_point_and_escaped_text() {
        let points = [
            Point {
                label: "cpio gzip".into(),
                group: "cpio".into(),
                x: 0.5,
                y: 10.0,
                peer: false,
            },
            Point {
                label: "tar <none>".into(),
                group: "tar".into(),
                x: 0.1,
                y: 20.0,
                peer: true,
            },
        ];
        let svg = svg("a & b", &["2 CPUs <x>".to_owned()], &points);
        assert!(svg.starts_with("<svg "));
        assert!(svg.trim_end().ends_with("</svg>"));
        // One dot and one square, plus the legend's one of each.
        assert_eq!(svg.matches("<circle ").count(), 2);
        assert_eq!(svg.matches("stroke-width=\"2\"").count(), 2);
        assert!(svg.contains("2 CPUs &lt;x&gt;"));
        assert!(svg.contains("a &amp; b"));
        assert!(svg.contains("tar &lt;none&gt;"));
    }
}
