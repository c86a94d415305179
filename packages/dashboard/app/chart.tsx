/** A uPlot chart sized to its container. */
import { useEffect, useRef } from 'preact/hooks';
import uPlot from 'uplot';

export interface ChartProps {
  title: string;
  /** x values (unix seconds) then one y array per series. */
  data: uPlot.AlignedData;
  /** Shown instead of the chart while there are fewer than two x values. */
  empty?: string;
  series: { label: string; colour: string; points?: boolean }[];
  yLabel: string;
  height?: number;
  format?: (value: number) => string;
}

export function Chart(props: ChartProps) {
  if (props.data[0].length < 2 && props.empty)
    return (
      <figure class="chart">
        <figcaption>{props.title}</figcaption>
        <p class="chart-empty">{props.empty}</p>
      </figure>
    );
  return <Plot {...props} />;
}

function Plot(props: ChartProps) {
  const box = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | undefined>(undefined);
  const shape = `${props.series.map((s) => s.label).join('|')}`;
  useEffect(() => {
    const el = box.current;
    if (!el) return;
    const fmt = props.format ?? ((v: number) => String(v));
    const opts: uPlot.Options = {
      width: Math.max(280, el.clientWidth),
      height: props.height ?? 240,
      legend: { show: true },
      cursor: { points: { size: 6 } },
      scales: { x: { time: true } },
      axes: [
        { stroke: 'currentColor', grid: { stroke: 'rgba(128,128,128,0.15)' } },
        {
          label: props.yLabel,
          stroke: 'currentColor',
          grid: { stroke: 'rgba(128,128,128,0.15)' },
          values: (_u, values) => values.map((v) => fmt(v)),
          size: 60,
        },
      ],
      series: [
        {},
        ...props.series.map((s) => ({
          label: s.label,
          stroke: s.colour,
          width: 2,
          spanGaps: true,
          value: (_u: uPlot, v: number | null) => (v == null ? '—' : fmt(v)),
          ...(s.points
            ? {
                paths: () => null,
                points: { show: true, size: 7, fill: s.colour, stroke: s.colour },
              }
            : { fill: `${s.colour}1a`, points: { show: false } }),
        })),
      ],
    };
    plot.current = new uPlot(opts, props.data, el);
    const resize = new ResizeObserver(() => {
      plot.current?.setSize({ width: Math.max(280, el.clientWidth), height: props.height ?? 240 });
    });
    resize.observe(el);
    return () => {
      resize.disconnect();
      plot.current?.destroy();
      plot.current = undefined;
    };
  }, [shape]);
  useEffect(() => {
    plot.current?.setData(props.data);
  }, [props.data]);
  return (
    <figure class="chart">
      <figcaption>{props.title}</figcaption>
      <div ref={box} class="chart-box" role="img" aria-label={props.title} />
    </figure>
  );
}
