/**
 * A reader of the Prometheus text exposition format (version 0.0.4), for
 * tests and tools that check what `/metrics` says. Strict: a line it cannot
 * read is an error, so a malformed exposition fails loudly.
 */

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface Exposition {
  samples: Sample[];
  /** Metric family name → `counter`, `gauge`, `histogram`, `summary`, `untyped`. */
  types: Map<string, string>;
  help: Map<string, string>;
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*/;

/** Go's ParseFloat, as Prometheus reads values: `NaN` and `Inf` in any case (prom-client writes `Nan`). */
function parseValue(text: string): number {
  const lower = text.toLowerCase();
  if (lower === "+inf" || lower === "inf") return Infinity;
  if (lower === "-inf") return -Infinity;
  if (lower === "nan") return NaN;
  const value = Number(text);
  if (text.trim() === "" || Number.isNaN(value)) throw new Error(`not a number: '${text}'`);
  return value;
}

/** Parses an exposition; throws with the line number on the first line it cannot read. */
export function parseExposition(text: string): Exposition {
  const samples: Sample[] = [];
  const types = new Map<string, string>();
  const help = new Map<string, string>();
  const lines = text.split("\n");
  lines.forEach((line, index) => {
    try {
      if (line.trim() === "") return;
      if (line.startsWith("# HELP ")) {
        const [name, ...rest] = line.slice(7).split(" ");
        help.set(name!, rest.join(" "));
        return;
      }
      if (line.startsWith("# TYPE ")) {
        const [name, type] = line.slice(7).split(" ");
        if (!name || !type || !["counter", "gauge", "histogram", "summary", "untyped"].includes(type)) throw new Error("bad TYPE line");
        types.set(name, type);
        return;
      }
      if (line.startsWith("#")) return;
      const name = NAME.exec(line)?.[0];
      if (!name) throw new Error("no metric name");
      let rest = line.slice(name.length);
      const labels: Record<string, string> = {};
      if (rest.startsWith("{")) {
        rest = rest.slice(1);
        while (!rest.startsWith("}")) {
          const labelName = LABEL_NAME.exec(rest)?.[0];
          if (!labelName || rest[labelName.length] !== "=" || rest[labelName.length + 1] !== '"') throw new Error("bad label");
          rest = rest.slice(labelName.length + 2);
          let value = "";
          for (;;) {
            const character = rest[0];
            if (character === undefined) throw new Error("unterminated label value");
            rest = rest.slice(1);
            if (character === '"') break;
            if (character === "\\") {
              const escaped = rest[0];
              rest = rest.slice(1);
              value += escaped === "n" ? "\n" : escaped;
            } else value += character;
          }
          labels[labelName] = value;
          if (rest.startsWith(",")) rest = rest.slice(1);
        }
        rest = rest.slice(1);
      }
      const fields = rest.trim().split(/\s+/);
      if (fields.length < 1 || fields.length > 2) throw new Error("expected a value and an optional timestamp");
      samples.push({ name, labels, value: parseValue(fields[0]!) });
    } catch (error) {
      throw new Error(`line ${index + 1}: ${(error as Error).message}: ${line}`);
    }
  });
  return { samples, types, help };
}

/** The sum of the samples named `name` whose labels include `labels`. */
export function sampleSum(exposition: Exposition, name: string, labels: Record<string, string> = {}): number {
  let sum = 0;
  for (const sample of exposition.samples) {
    if (sample.name !== name) continue;
    if (Object.entries(labels).every(([key, value]) => sample.labels[key] === value)) sum += sample.value;
  }
  return sum;
}

/** Distinct label sets of the samples named `name`: the number of time series. */
export function seriesCount(exposition: Exposition, name: string): number {
  return exposition.samples.filter((sample) => sample.name === name).length;
}
