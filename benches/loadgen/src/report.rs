//! Figures and their presentation: markdown tables, JSON and an SVG plot of
//! the Outpost/Mosquitto ratios.

use std::fmt::Write as _;

use crate::mqtt::Conn;

/// One measured figure, by key; `describe` knows its label and unit.
#[derive(Debug, Clone)]
pub struct Metric {
    pub key: &'static str,
    pub value: f64,
}

impl Metric {
    pub fn new(key: &'static str, value: f64) -> Self {
        Metric { key, value }
    }
}

/// What one scenario measured on one broker.
pub struct Outcome {
    pub metrics: Vec<Metric>,
    pub notes: Vec<String>,
    /// Connections to keep open until the broker has been stopped.
    pub hold: Vec<Conn>,
}

impl Outcome {
    pub fn new(metrics: Vec<Metric>, notes: Vec<String>) -> Self {
        Outcome {
            metrics,
            notes,
            hold: Vec::new(),
        }
    }

    pub fn get(&self, key: &str) -> Option<f64> {
        self.metrics.iter().find(|m| m.key == key).map(|m| m.value)
    }
}

/// One broker's run of one case: figures, or why there are none.
pub struct BrokerRun {
    pub broker: &'static str,
    pub outcome: Option<Outcome>,
    pub error: Option<String>,
}

/// One case (scenario with its parameters) on every broker.
pub struct Case {
    pub group: &'static str,
    pub name: String,
    pub params: Vec<(&'static str, String)>,
    pub runs: Vec<BrokerRun>,
}

impl Case {
    fn run(&self, broker: &str) -> Option<&Outcome> {
        self.runs
            .iter()
            .find(|r| r.broker == broker)
            .and_then(|r| r.outcome.as_ref())
    }

    /// Outpost's figure over Mosquitto's.
    pub fn ratio(&self, key: &str) -> Option<f64> {
        let o = self.run("outpost")?.get(key)?;
        let m = self.run("mosquitto")?.get(key)?;
        (m > 0.0 && o.is_finite()).then(|| o / m)
    }
}

/// Label, whether higher is better, whether it goes in the ratio plot.
fn describe(key: &str) -> (&'static str, bool, bool) {
    match key {
        "msgs_s" => ("msgs/s", true, true),
        "sent_s" => ("sent/s", true, false),
        "deliveries_s" => ("deliveries/s", true, true),
        "misordered" => ("out of order", false, false),
        "rooms_us" => ("rooms reply", false, false),
        "mb_s" => ("MB/s", true, false),
        "p50_us" => ("p50", false, true),
        "p99_us" => ("p99", false, true),
        "calm_p50_us" => ("p50 calm", false, false),
        "calm_p99_us" => ("p99 calm", false, false),
        "peak_rss_kb" => ("peak RSS", false, true),
        "cpu_pct" => ("CPU", false, true),
        "disk_b_msg" => ("disk B/msg", false, false),
        "sent" => ("sent", true, false),
        "lost_pct" => ("lost", false, false),
        "clients" => ("clients", true, false),
        "connects_s" => ("connects/s", true, false),
        "rss_per_conn_b" => ("RSS/conn", false, true),
        "idle_cpu_ms" => ("idle CPU", false, false),
        "wakeups_s" => ("ctx switches/s", false, false),
        "storm_ms" => ("all back (median)", false, true),
        "storm_max_ms" => ("all back (max)", false, false),
        "client_back_ms" => ("one back (p50)", false, false),
        "burst_ms" => ("all logged in", false, false),
        "login_p50_ms" => ("one login (p50)", false, false),
        "max_us" => ("max", false, false),
        "calm_max_us" => ("max calm", false, false),
        "during_n" => ("RTTs in burst", true, false),
        "burst_cpu_ms" => ("CPU time (burst, ≥1 s)", false, false),
        "ack_p50_us" => ("ack p50", false, false),
        "rss_growth_kb" => ("RSS growth (queued)", false, true),
        "drain_msgs_s" => ("drain msgs/s", true, false),
        "ack_p99_us" => ("ack p99", false, false),
        "total_ms" => ("all connected", false, true),
        "connack_p50_us" => ("CONNACK p50", false, false),
        "connack_p99_us" => ("CONNACK p99", false, false),
        "flushes_msg" => ("flushes/msg", false, false),
        "gb_day" => ("GB/day at 50/s", false, false),
        "q0_p50_us" => ("QoS 0 p50", false, false),
        "q0_p99_us" => ("QoS 0 p99", false, false),
        _ => ("?", false, false),
    }
}

fn format_value(key: &str, v: f64) -> String {
    match key {
        "msgs_s" | "sent" | "connects_s" | "drain_msgs_s" | "sent_s" | "deliveries_s" => count(v),
        "clients" | "during_n" | "misordered" => format!("{v:.0}"),
        "mb_s" => format!("{v:.1}"),
        k if k.ends_with("_us") => {
            if v < 1000.0 {
                format!("{v:.0} µs")
            } else {
                format!("{:.1} ms", v / 1000.0)
            }
        }
        "peak_rss_kb" | "rss_growth_kb" => format!("{:.1} MiB", v / 1024.0),
        "cpu_pct" => {
            if v < 10.0 {
                format!("{v:.2}%")
            } else {
                format!("{v:.0}%")
            }
        }
        "lost_pct" => format!("{v:.2}%"),
        "disk_b_msg" => format!("{v:.0}"),
        "flushes_msg" => format!("{v:.3}"),
        "gb_day" => format!("{v:.3}"),
        "rss_per_conn_b" => format!("{:.1} KiB", v / 1024.0),
        "idle_cpu_ms" | "storm_ms" | "storm_max_ms" | "burst_cpu_ms" | "total_ms" => {
            format!("{v:.0} ms")
        }
        "client_back_ms" | "burst_ms" | "login_p50_ms" => format!("{v:.1} ms"),
        "wakeups_s" => format!("{v:.1}"),
        _ => format!("{v}"),
    }
}

fn count(v: f64) -> String {
    if v >= 1e6 {
        format!("{:.2}M", v / 1e6)
    } else if v >= 1e4 {
        format!("{:.1}k", v / 1e3)
    } else {
        format!("{v:.0}")
    }
}

/// Markdown tables, one per scenario group, with a ratio row per case.
pub fn tables(cases: &[Case]) -> String {
    let mut out = String::new();
    let mut groups: Vec<&str> = Vec::new();
    for c in cases {
        if !groups.contains(&c.group) {
            groups.push(c.group);
        }
    }
    for g in groups {
        let in_group: Vec<&Case> = cases.iter().filter(|c| c.group == g).collect();
        let mut keys: Vec<&'static str> = Vec::new();
        for c in &in_group {
            for r in &c.runs {
                for m in r.outcome.iter().flat_map(|o| &o.metrics) {
                    if !keys.contains(&m.key) {
                        keys.push(m.key);
                    }
                }
            }
        }
        let _ = writeln!(out, "### {g}\n");
        let _ = write!(out, "| case | broker |");
        for k in &keys {
            let _ = write!(out, " {} |", describe(k).0);
        }
        let _ = write!(out, "\n|---|---|");
        for _ in &keys {
            let _ = write!(out, "---:|");
        }
        out.push('\n');
        let mut notes = Vec::new();
        for c in &in_group {
            for r in &c.runs {
                let _ = write!(out, "| {} | {} |", c.name, r.broker);
                match &r.outcome {
                    Some(o) => {
                        for k in &keys {
                            let cell = o.get(k).map(|v| format_value(k, v)).unwrap_or_default();
                            let _ = write!(out, " {cell} |");
                        }
                        for n in &o.notes {
                            notes.push(format!("{} / {}: {n}", c.name, r.broker));
                        }
                    }
                    None => {
                        let _ = write!(out, " failed |");
                        for _ in 1..keys.len() {
                            out.push_str(" |");
                        }
                    }
                }
                if let Some(e) = &r.error {
                    let first = e.lines().next().unwrap_or("");
                    notes.push(format!("{} / {}: {first}", c.name, r.broker));
                }
                out.push('\n');
            }
            if c.runs.len() > 1 {
                let _ = write!(out, "| {} | **Outpost/Mosquitto** |", c.name);
                for k in &keys {
                    let cell = match (c.ratio(k), describe(k).0) {
                        (_, "sent" | "lost" | "out of order" | "clients" | "RTTs in burst") => {
                            String::new()
                        }
                        (Some(r), _) => format!("{r:.2}×"),
                        (None, _) => String::new(),
                    };
                    let _ = write!(out, " {cell} |");
                }
                out.push('\n');
            }
        }
        out.push('\n');
        for n in notes {
            let _ = writeln!(out, "- {n}");
        }
        out.push('\n');
    }
    out
}

/// The whole result set as JSON (written by hand: no dependencies).
pub fn json(meta: &[(&str, String)], cases: &[Case]) -> String {
    let mut o = String::from("{\n");
    for (k, v) in meta {
        let _ = writeln!(o, "  {}: {},", q(k), q(v));
    }
    o.push_str("  \"scenarios\": [\n");
    for (i, c) in cases.iter().enumerate() {
        let _ = writeln!(o, "    {{");
        let _ = writeln!(o, "      \"group\": {},", q(c.group));
        let _ = writeln!(o, "      \"name\": {},", q(&c.name));
        let params: Vec<String> = c
            .params
            .iter()
            .map(|(k, v)| format!("{}: {}", q(k), q(v)))
            .collect();
        let _ = writeln!(o, "      \"params\": {{{}}},", params.join(", "));
        let mut keys: Vec<&str> = Vec::new();
        for r in &c.runs {
            let _ = writeln!(o, "      {}: {{", q(r.broker));
            let mut fields = Vec::new();
            if let Some(out) = &r.outcome {
                for m in &out.metrics {
                    if !keys.contains(&m.key) {
                        keys.push(m.key);
                    }
                    fields.push(format!("        {}: {}", q(m.key), num(m.value)));
                }
                let notes: Vec<String> = out.notes.iter().map(|n| q(n)).collect();
                fields.push(format!("        \"notes\": [{}]", notes.join(", ")));
            }
            if let Some(e) = &r.error {
                fields.push(format!("        \"error\": {}", q(e)));
            }
            let _ = writeln!(o, "{}\n      }},", fields.join(",\n"));
        }
        let ratios: Vec<String> = keys
            .iter()
            .filter_map(|k| c.ratio(k).map(|r| format!("{}: {}", q(k), num(r))))
            .collect();
        let _ = writeln!(o, "      \"ratio\": {{{}}}", ratios.join(", "));
        let comma = if i + 1 < cases.len() { "," } else { "" };
        let _ = writeln!(o, "    }}{comma}");
    }
    o.push_str("  ]\n}\n");
    o
}

fn num(v: f64) -> String {
    if v.is_finite() {
        let r = (v * 1000.0).round() / 1000.0;
        format!("{r}")
    } else {
        "null".into()
    }
}

fn q(s: &str) -> String {
    let mut o = String::with_capacity(s.len() + 2);
    o.push('"');
    for ch in s.chars() {
        match ch {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            '\n' => o.push_str("\\n"),
            '\t' => o.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(o, "\\u{:04x}", c as u32);
            }
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

const PLOT_KEYS: [&str; 7] = [
    "msgs_s",
    "p50_us",
    "p99_us",
    "peak_rss_kb",
    "cpu_pct",
    "rss_per_conn_b",
    "storm_ms",
];
const COLOURS: [&str; 7] = [
    "#2b6cb0", "#38a169", "#2f855a", "#d69e2e", "#c53030", "#805ad5", "#dd6b20",
];

/// Grouped bars of Outpost/Mosquitto per case on a log2 axis (1 = parity).
pub fn svg(title: &str, cases: &[Case]) -> String {
    // Only plottable keys present in some case, in a fixed order.
    let keys: Vec<(usize, &str)> = PLOT_KEYS
        .iter()
        .enumerate()
        .filter(|(_, k)| cases.iter().any(|c| c.ratio(k).is_some()))
        .map(|(i, k)| (i, *k))
        .collect();
    let bars: Vec<Vec<(usize, &str, f64)>> = cases
        .iter()
        .map(|c| {
            keys.iter()
                .filter_map(|&(i, k)| c.ratio(k).map(|r| (i, k, r)))
                .collect()
        })
        .collect();
    let bar_w = 12.0;
    let gap = 18.0;
    let left = 60.0;
    let top = 70.0;
    let plot_h = 400.0;
    let group_ws: Vec<f64> = bars
        .iter()
        .map(|b| (b.len().max(1) as f64) * bar_w + gap)
        .collect();
    let plot_w: f64 = group_ws.iter().sum::<f64>().max(420.0);
    // Room on the right for the last rotated case name.
    let width = left + plot_w + 140.0;
    let height = top + plot_h + 160.0 + 20.0 * keys.len().div_ceil(3) as f64;
    // log2 axis from 1/32 to 32; bars beyond are clipped and labelled.
    let span = 5.0;
    let y_of = |r: f64| {
        let l = r.log2().clamp(-span, span);
        top + plot_h / 2.0 - l / span * (plot_h / 2.0)
    };
    let mut s = String::new();
    let _ = writeln!(
        s,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width:.0}\" height=\"{height:.0}\" \
         viewBox=\"0 0 {width:.0} {height:.0}\" font-family=\"sans-serif\" font-size=\"11\">"
    );
    let _ = writeln!(s, "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>");
    let _ = writeln!(
        s,
        "<text x=\"{left}\" y=\"22\" font-size=\"15\" font-weight=\"bold\">{}</text>",
        esc(title)
    );
    let _ = writeln!(
        s,
        "<text x=\"{left}\" y=\"38\" fill=\"#555\">Outpost / Mosquitto, log scale. \
         Above 1 is better for msgs/s;</text>\n<text x=\"{left}\" y=\"52\" fill=\"#555\">\
         below 1 is better for latency, memory, CPU and reconnect time.</text>"
    );
    for e in -5i32..=5 {
        let r = 2f64.powi(e);
        let y = y_of(r);
        let (stroke, w) = if e == 0 { ("#000", 1.5) } else { ("#ddd", 1.0) };
        let _ = writeln!(
            s,
            "<line x1=\"{left}\" y1=\"{y:.1}\" x2=\"{:.1}\" y2=\"{y:.1}\" stroke=\"{stroke}\" stroke-width=\"{w}\"/>",
            left + plot_w
        );
        let label = if e >= 0 {
            format!("{}×", 1 << e)
        } else {
            format!("1/{}×", 1 << -e)
        };
        let _ = writeln!(
            s,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{label}</text>",
            left - 6.0,
            y + 4.0
        );
    }
    let base = y_of(1.0);
    let mut x = left + gap / 2.0;
    for (ci, c) in cases.iter().enumerate() {
        for &(i, k, r) in &bars[ci] {
            let y = y_of(r);
            let (y0, h) = if y < base {
                (y, base - y)
            } else {
                (base, y - base)
            };
            let _ = writeln!(
                s,
                "<rect x=\"{x:.1}\" y=\"{y0:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"{}\">\
                 <title>{}: {} {r:.2}×</title></rect>",
                bar_w - 1.0,
                h.max(1.0),
                COLOURS[i],
                esc(&c.name),
                describe(k).0
            );
            if r.log2().abs() > span {
                let ty = if r > 1.0 { y0 - 3.0 } else { y0 + h + 10.0 };
                let _ = writeln!(
                    s,
                    "<text x=\"{:.1}\" y=\"{ty:.1}\" font-size=\"8\" text-anchor=\"middle\">{}</text>",
                    x + bar_w / 2.0,
                    short_ratio(r)
                );
            }
            x += bar_w;
        }
        if bars[ci].is_empty() {
            let _ = writeln!(
                s,
                "<text x=\"{:.1}\" y=\"{:.1}\" fill=\"#c53030\">n/a</text>",
                x,
                base - 4.0
            );
            x += bar_w;
        }
        let mid = x - (bars[ci].len().max(1) as f64) * bar_w / 2.0;
        let ly = top + plot_h + 8.0;
        let _ = writeln!(
            s,
            "<text transform=\"translate({mid:.1},{ly:.1}) rotate(40)\">{}</text>",
            esc(&c.name)
        );
        x += gap;
    }
    let mut ly = top + plot_h + 125.0;
    let mut lx = left;
    for (n, &(i, k)) in keys.iter().enumerate() {
        if n > 0 && n % 3 == 0 {
            ly += 20.0;
            lx = left;
        }
        let _ = writeln!(
            s,
            "<rect x=\"{lx:.1}\" y=\"{:.1}\" width=\"12\" height=\"12\" fill=\"{}\"/>\
             <text x=\"{:.1}\" y=\"{ly:.1}\">{}</text>",
            ly - 10.0,
            COLOURS[i],
            lx + 16.0,
            esc(describe(k).0)
        );
        lx += 150.0;
    }
    s.push_str("</svg>\n");
    s
}

fn short_ratio(r: f64) -> String {
    if r >= 1.0 {
        format!("{r:.0}")
    } else {
        format!("{r:.3}")
    }
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}
