/**
 * The exits-per-second chart: one line per exit reason over the last
 * minute, for all vCPUs together or for the one chosen, drawn on a canvas
 * (no chart library: a few lines serve). What it shows last is kept on
 * the canvas's data attributes, for whoever watches the page (the tests).
 */
const HISTORY = 120;
const COLORS = ['#4fb3ff', '#ffb347', '#7bd88f', '#ff6b6b', '#c38fff', '#f4e04d', '#5ee0d0', '#ff8fc8'];

/** Exits per second by reason. */
export type Rates = Record<string, number>;

export class ExitChart {
  /** Each sample's rates, one entry a vCPU. */
  private readonly points: { atMs: number; rates: Rates[] }[] = [];
  private readonly colors = new Map<string, string>();
  /** The vCPU shown, or all of them. */
  private vcpu: number | 'all' = 'all';

  constructor(
    private readonly canvas: HTMLCanvasElement,
    private readonly legend: HTMLElement,
  ) {}

  clear(): void {
    this.points.length = 0;
    this.draw();
  }

  add(atMs: number, rates: Rates[]): void {
    this.points.push({ atMs, rates });
    if (this.points.length > HISTORY) this.points.shift();
    for (const reason of rates.flatMap(Object.keys)) if (!this.colors.has(reason)) this.colors.set(reason, COLORS[this.colors.size % COLORS.length]);
    this.draw();
  }

  show(vcpu: number | 'all'): void {
    this.vcpu = vcpu;
    this.draw();
  }

  /** One sample's rates for the vCPU shown. */
  private shown(rates: Rates[]): Rates {
    if (this.vcpu !== 'all') return rates[this.vcpu] ?? {};
    const out: Rates = {};
    for (const r of rates) for (const [reason, n] of Object.entries(r)) out[reason] = (out[reason] ?? 0) + n;
    return out;
  }

  private draw(): void {
    const { canvas } = this;
    const points = this.points.map((p) => this.shown(p.rates));
    const latest = points.at(-1) ?? {};
    canvas.dataset.vcpu = String(this.vcpu);
    canvas.dataset.latest = String(Object.values(latest).reduce((a, b) => a + b, 0));
    const g = canvas.getContext('2d')!;
    const [w, h, left, bottom] = [canvas.width, canvas.height, 56, 18];
    g.clearRect(0, 0, w, h);
    const top = Math.max(1, ...points.flatMap(Object.values));
    const scale = niceCeiling(top);
    g.strokeStyle = '#2c333b';
    g.fillStyle = '#9aa7b4';
    g.font = '11px system-ui';
    for (let i = 0; i <= 4; i++) {
      const y = (h - bottom) * (1 - i / 4);
      g.beginPath();
      g.moveTo(left, y);
      g.lineTo(w, y);
      g.stroke();
      g.fillText(formatRate((scale * i) / 4), 4, Math.max(10, y + 4));
    }
    g.fillText('last minute', w - 70, h - 4);
    const x = (i: number) => left + ((w - left) * i) / (HISTORY - 1);
    const y = (v: number) => (h - bottom) * (1 - v / scale);
    for (const [reason, color] of this.colors) {
      g.strokeStyle = color;
      g.lineWidth = 2;
      g.beginPath();
      points.forEach((p, i) => {
        const at = HISTORY - points.length + i;
        if (i === 0) g.moveTo(x(at), y(p[reason] ?? 0));
        else g.lineTo(x(at), y(p[reason] ?? 0));
      });
      g.stroke();
    }
    this.legend.replaceChildren(
      ...[...this.colors].map(([reason, color]) => {
        const item = document.createElement('span');
        const swatch = document.createElement('i');
        swatch.style.background = color;
        item.append(swatch, reason);
        return item;
      }),
    );
  }
}

function niceCeiling(v: number): number {
  const power = 10 ** Math.floor(Math.log10(v));
  return [1, 2, 5, 10].map((m) => m * power).find((c) => c >= v)!;
}

export function formatRate(v: number): string {
  return v >= 1e6 ? `${(v / 1e6).toFixed(1)}M` : v >= 1e3 ? `${(v / 1e3).toFixed(1)}k` : v.toFixed(0);
}
