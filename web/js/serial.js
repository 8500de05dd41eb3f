// A view's refresh that never shows an older answer over a newer one: a refresh asked for while
// one runs makes it run once more when done, never two at once (two overlapping fetches can
// answer out of order, and the older answer would then stand until the next event).

/** ``task`` (async) run one at a time; calls while it runs fold into one more run after it. */
export function serial(task) {
  let running = null;
  let again = false;
  return () => {
    if (running) {
      again = true;
      return running;
    }
    running = (async () => {
      try {
        do {
          again = false;
          await task();
        } while (again);
      } finally {
        running = null;
      }
    })();
    return running;
  };
}
