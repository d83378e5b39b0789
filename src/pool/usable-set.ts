/**
 * An unordered set with O(1) add, delete and uniform random access: an array
 * plus each item's index, deleting by swapping the last item into the hole.
 * This is what keeps a P2C pick O(1) in the number of members.
 */
export interface Indexed {
  usableIndex: number;
}

export class UsableSet<T extends Indexed> {
  readonly items: T[] = [];

  get size(): number {
    return this.items.length;
  }

  add(item: T): void {
    if (item.usableIndex >= 0) return;
    item.usableIndex = this.items.length;
    this.items.push(item);
  }

  delete(item: T): void {
    const i = item.usableIndex;
    if (i < 0) return;
    const last = this.items.pop() as T;
    if (last !== item) {
      this.items[i] = last;
      last.usableIndex = i;
    }
    item.usableIndex = -1;
  }

  at(i: number): T {
    return this.items[i] as T;
  }
}
