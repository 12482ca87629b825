// Counts in words, as the cli and the console say them.

/** `count` with the word for one or for many: `1 signature`, `3 signatures`. */
export const counted = (count: number, one: string, many: string) => `${count} ${count === 1 ? one : many}`;
