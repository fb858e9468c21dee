/** The report library's old path; it lives in pipeline/report/ (see report/mod.ts). */
export * from "./report/mod.ts";
