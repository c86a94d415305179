/** Gzipped bytes the app (JavaScript + CSS) may take. */
export declare const BUDGET_GZIP_BYTES: number;
/** Bundles app/main.tsx into dist/app/app.js and app.css. */
export declare function buildApp(): Promise<void>;
/** Sizes of the built bundle against the budget. */
export declare function measure(): Promise<{
  sizes: Record<string, { bytes: number; gzip: number }>;
  gzip: number;
  budget: number;
  ok: boolean;
}>;
