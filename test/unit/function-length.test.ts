/**
 * Rooms small enough to read in one sitting: no function or method in `src/` or
 * `receiver/src/` is longer than 80 lines, unless a comment right above it says why it must be
 * one piece (a comment containing "one piece").
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import { tsFilesUnder } from '../helpers/source-files';

const MAX_LINES = 80;


function longFunctions(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const sf = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true);
  const found: string[] = [];
  const visit = (node: ts.Node): void => {
    const isFn =
      ts.isFunctionDeclaration(node) ||
      ts.isMethodDeclaration(node) ||
      ts.isArrowFunction(node) ||
      ts.isFunctionExpression(node) ||
      ts.isConstructorDeclaration(node);
    if (isFn && node.body) {
      const start = sf.getLineAndCharacterOfPosition(node.getStart()).line;
      const end = sf.getLineAndCharacterOfPosition(node.getEnd()).line;
      const lines = end - start + 1;
      if (lines > MAX_LINES) {
        // The comment may sit above the function, or above the statement that holds it.
        let holder: ts.Node = node;
        while (holder.parent && !ts.isSourceFile(holder.parent) && !ts.isBlock(holder.parent) && !ts.isClassLike(holder.parent)) {
          holder = holder.parent;
        }
        const comments = ts.getLeadingCommentRanges(text, holder.getFullStart()) ?? [];
        const explained = comments.some((c) => /one piece/i.test(text.slice(c.pos, c.end)));
        const name = 'name' in node && node.name ? node.name.getText(sf) : '(anonymous)';
        const rel = path.relative(process.cwd(), file);
        if (!explained) {
          found.push(`${rel}:${start + 1} ${name} (${lines} lines)`);
        }
      }
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return found;
}

describe('function length', () => {
  it(`no function in src/ or receiver/src/ is longer than ${MAX_LINES} lines without saying why`, () => {
    const files = [...tsFilesUnder(path.resolve('src')), ...tsFilesUnder(path.resolve('receiver/src'))];
    expect(files.flatMap(longFunctions)).toEqual([]);
  });
});
