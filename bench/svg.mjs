// A latency histogram as a hand-written SVG (no dependencies): log-spaced bins, one step line per series,
// with its p50 / p99 marked.
const esc = (s) => String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** `series`: [{ name, color, values (ms), p50, p99 }]. */
export function latencySvg(series, title) {
  const W = 900;
  const H = 420;
  const m = { left: 70, right: 20, top: 50, bottom: 60 };
  const all = series.flatMap((s) => s.values).filter((v) => v > 0);
  const lo = Math.pow(10, Math.floor(Math.log10(Math.max(Math.min(...all, 1), 0.01))));
  const hi = Math.pow(10, Math.ceil(Math.log10(Math.max(...all, 10))));
  const perDecade = 20;
  const bins = Math.round(Math.log10(hi / lo) * perDecade);
  const edge = (i) => lo * Math.pow(10, i / perDecade);
  const hist = series.map((s) => {
    const counts = new Array(bins).fill(0);
    for (const v of s.values) {
      const i = Math.min(bins - 1, Math.max(0, Math.floor(Math.log10(Math.max(v, lo) / lo) * perDecade)));
      counts[i]++;
    }
    return counts.map((c) => (s.values.length ? c / s.values.length : 0));
  });
  const ymax = Math.max(0.01, ...hist.flat()) * 1.1;
  const r1 = (v) => Math.round(v * 10) / 10;
  const x = (v) => r1(m.left + ((W - m.left - m.right) * Math.log10(v / lo)) / Math.log10(hi / lo));
  const y = (f) => r1(H - m.bottom - ((H - m.top - m.bottom) * f) / ymax);
  const out = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`);
  out.push(`<rect width="${W}" height="${H}" fill="white"/>`);
  out.push(`<text x="${W / 2}" y="22" text-anchor="middle" font-size="15">${esc(title)}</text>`);
  // axes and grid
  out.push(`<line x1="${m.left}" y1="${H - m.bottom}" x2="${W - m.right}" y2="${H - m.bottom}" stroke="black"/>`);
  out.push(`<line x1="${m.left}" y1="${m.top}" x2="${m.left}" y2="${H - m.bottom}" stroke="black"/>`);
  for (let d = lo; d <= hi * 1.0001; d *= 10) {
    for (const k of [1, 2, 5]) {
      const v = d * k;
      if (v > hi * 1.0001) break;
      out.push(`<line x1="${x(v)}" y1="${m.top}" x2="${x(v)}" y2="${H - m.bottom}" stroke="#ddd"/>`);
      out.push(`<text x="${x(v)}" y="${H - m.bottom + 16}" text-anchor="middle">${v >= 1000 ? `${v / 1000} s` : `${+v.toPrecision(3)} ms`}</text>`);
    }
  }
  for (let i = 0; i <= 4; i++) {
    const f = (ymax * i) / 4;
    out.push(`<text x="${m.left - 6}" y="${y(f) + 4}" text-anchor="end">${(f * 100).toFixed(0)}%</text>`);
  }
  out.push(
    `<text x="${W / 2}" y="${H - 18}" text-anchor="middle">latency: last needed signal published → decision received (log scale, ${perDecade} bins per decade)</text>`,
  );
  out.push(`<text transform="translate(16 ${H / 2}) rotate(-90)" text-anchor="middle">share of workflows</text>`);
  series.forEach((s, k) => {
    let d = `M ${x(edge(0))} ${y(0)}`;
    hist[k].forEach((f, i) => {
      d += ` L ${x(edge(i))} ${y(f)} L ${x(edge(i + 1))} ${y(f)}`;
    });
    d += ` L ${x(edge(bins))} ${y(0)}`;
    out.push(`<path d="${d}" fill="${s.color}" fill-opacity="0.15" stroke="${s.color}" stroke-width="1.5"/>`);
    for (const [label, v] of [
      ['p50', s.p50],
      ['p99', s.p99],
    ]) {
      if (!(v > 0)) continue;
      out.push(
        `<line x1="${x(v)}" y1="${m.top}" x2="${x(v)}" y2="${H - m.bottom}" stroke="${s.color}" stroke-dasharray="${label === 'p50' ? '4 3' : '1 3'}"/>`,
      );
    }
    const ly = m.top + 4 + k * 18;
    out.push(`<rect x="${W - m.right - 330}" y="${ly - 10}" width="12" height="12" fill="${s.color}" fill-opacity="0.5" stroke="${s.color}"/>`);
    out.push(`<text x="${W - m.right - 312}" y="${ly}">${esc(`${s.name}: n=${s.values.length} p50=${s.p50} ms p99=${s.p99} ms`)}</text>`);
  });
  out.push('</svg>');
  return out.join('\n') + '\n';
}
