"""Import contacts and orders from CSV (UTF-8, UTF-8 with BOM, UTF-16, GBK/GB18030) and XLSX.

- `reading`  opens an uploaded file as a table: header + rows of text cells.
- `mapping`  the fields a column can be imported into, and the automatic mapping of headers
             (Chinese or English, the export's own headers included).
- `uploads`  stores an upload under SIYU_HOME/imports/<workspace slug>/ until it is imported.
- `contacts` / `orders`  validate rows and write them through the contacts and orders actions.
- `jobs`     starting an import (a `Job`, audited) and the job handlers with the error report.

See docs/import.md."""
