/**
 * CSV as RFC 4180 writes it: fields split by commas, records by LF or CRLF; a field in double
 * quotes may hold commas, line breaks and doubled quotes (`""`). A UTF-8 byte-order mark at
 * the start is dropped. Each record keeps the line it starts on, for messages.
 *
 * Unquoted fields are trimmed of the spaces around them (`x.png, 2` reads as "x.png", "2");
 * a quoted field is kept exactly as written between its quotes.
 */

/** One record: its fields and the 1-based line it starts on. */
export interface CsvRecord {
  line: number;
  fields: string[];
}

/** Text that is not CSV: a quote that never closes, or text after a closing quote. */
export class CsvError extends Error {
  constructor(readonly line: number, readonly column: number, readonly problem: string) {
    super(`${line}:${column}: ${problem}`);
  }
}

/**
 * The records of `text`, blank lines skipped; throws CsvError naming line:column.
 *
 * @example parseCsv('file,answer\nx.png,"2 , 2"\n') // [{line: 1, ...}, {line: 2, fields: ["x.png", "2 , 2"]}]
 */
export function parseCsv(text: string): CsvRecord[] {
  const source = text.startsWith("\uFEFF") ? text.slice(1) : text;
  const records: CsvRecord[] = [];
  let fields: string[] = [];
  let field = "";
  let quoted = false; // the current field was quoted (and is complete or being read)
  let line = 1;
  let column = 1;
  let recordLine = 1;
  let i = 0;
  const endField = () => {
    fields.push(quoted ? field : field.trim());
    field = "";
    quoted = false;
  };
  const endRecord = () => {
    endField();
    if (!(fields.length === 1 && fields[0] === "" && !quotedBlank)) {
      records.push({ line: recordLine, fields });
    }
    fields = [];
    quotedBlank = false;
  };
  let quotedBlank = false; // a record holding only "" is a record, not a blank line
  while (i < source.length) {
    const c = source[i];
    if (c === '"' && field.trim() === "" && !quoted) {
      // A quoted field: read to its closing quote.
      const startLine = line;
      const startColumn = column;
      field = "";
      quoted = true;
      quotedBlank = true;
      i++;
      column++;
      for (;;) {
        if (i >= source.length) {
          throw new CsvError(startLine, startColumn, "a quoted field is never closed");
        }
        const q = source[i];
        if (q === '"') {
          if (source[i + 1] === '"') {
            field += '"';
            i += 2;
            column += 2;
            continue;
          }
          i++;
          column++;
          break;
        }
        if (q === "\n") {
          line++;
          column = 1;
        } else column++;
        field += q;
        i++;
      }
      // Only spaces may follow the closing quote before the next comma or line end.
      while (source[i] === " " || source[i] === "\t") {
        i++;
        column++;
      }
      if (i < source.length && source[i] !== "," && source[i] !== "\n" && source[i] !== "\r") {
        throw new CsvError(
          line,
          column,
          "text after a closing quote (double a quote inside a quoted field)",
        );
      }
      continue;
    }
    if (c === '"') {
      throw new CsvError(
        line,
        column,
        "a quote inside an unquoted field (quote the whole field and double the quote)",
      );
    }
    if (c === ",") {
      endField();
      i++;
      column++;
      continue;
    }
    if (c === "\r" && source[i + 1] === "\n") {
      i++;
      continue;
    }
    if (c === "\n") {
      endRecord();
      i++;
      line++;
      column = 1;
      recordLine = line;
      continue;
    }
    field += c;
    i++;
    column++;
  }
  if (field !== "" || quoted || fields.length > 0) endRecord();
  return records;
}
