// Tests whose time is mostly waiting (a start that tries again until its wait has passed, a
// server's timeout on a connection, a process's grace period) and that share nothing they assert on
// (each its own process, database, files or connection) run side by side: the first of them that
// mocha runs starts every one's body, and each test awaits its own body, whose failure is its own
// alone.

/** The i-th function runs (the first call of any starts all of them) and awaits `bodies[i]`. */
export function sideBySide(bodies: Array<() => Promise<void>>): Array<() => Promise<void>> {
  let running: Array<Promise<void>> | undefined;
  return bodies.map((_, i) => () => {
    running ??= bodies.map((body) => {
      const run = Promise.resolve().then(body);
      // Awaited by its own test, however long the others take: not an unhandled rejection meanwhile.
      run.catch(() => {});
      return run;
    });
    return running[i]!;
  });
}

/** One test per entry (its title, then its body), in order, their bodies run side by side (sideBySide). */
export function itSideBySide(tests: Record<string, () => Promise<void>>): void {
  const bodies = sideBySide(Object.values(tests));
  Object.keys(tests).forEach((title, i) => it(title, () => bodies[i]!()));
}
