// parse-mermaid.mjs: mermaid's own parser over diagrams read from stdin, for docs_check.py.
//
// stdin: a JSON array of diagram texts. stdout: a JSON array of the same length, each entry null
// (the diagram parses) or mermaid's error message. Exit 0 unless the input cannot be read.
//
// mermaid.parse() runs the diagram's grammar and its parser actions, and only those: nothing is
// laid out or drawn, so node needs no DOM, with one exception. Some parser actions (the state
// diagram's, for one) pass labels through DOMPurify, which in a browser removes unsafe HTML and
// outside one has no sanitize() at all. Sanitizing rewrites text and never rejects a diagram, so
// here it returns the text unchanged. Any other DOM use would throw, and be reported as an error.
import DOMPurify from 'dompurify';

DOMPurify.sanitize ??= (text) => text;
DOMPurify.addHook ??= () => {};

const { default: mermaid } = await import('mermaid');

let input = '';
for await (const chunk of process.stdin) input += chunk;
const results = [];
for (const text of JSON.parse(input)) {
  try {
    await mermaid.parse(text);
    results.push(null);
  } catch (e) {
    results.push(String(e?.message ?? e));
  }
}
process.stdout.write(JSON.stringify(results) + '\n');
