// The files of a drop or a picker, folders walked to their leaves, each with its path in the
// folder. Hidden files (.DS_Store and the like) are left out; anything else goes up, and the
// server says which are not images.
export interface Picked {
  file: File;
  path: string;
}

const hidden = (name: string) => name.startsWith(".");

function readAll(reader: FileSystemDirectoryReader): Promise<FileSystemEntry[]> {
  // readEntries answers in batches (100 in Chromium) until an empty one.
  return new Promise((resolve, reject) => {
    const out: FileSystemEntry[] = [];
    const next = () =>
      reader.readEntries((batch) => {
        if (batch.length === 0) resolve(out);
        else {
          out.push(...batch);
          next();
        }
      }, reject);
    next();
  });
}

async function walk(entry: FileSystemEntry, out: Picked[]): Promise<void> {
  if (hidden(entry.name)) return;
  if (entry.isFile) {
    const file = await new Promise<File>((resolve, reject) => (entry as FileSystemFileEntry).file(resolve, reject));
    out.push({ file, path: entry.fullPath.replace(/^\//, "") });
  } else if (entry.isDirectory) {
    for (const child of await readAll((entry as FileSystemDirectoryEntry).createReader())) await walk(child, out);
  }
}

/** The files of a drop, folders included (an item with no entry, as a script's drop has, is taken as a file). */
export async function fromDrop(data: DataTransfer): Promise<Picked[]> {
  // Entries and files are read before any await: a drop's items are gone once its handler yields.
  const items = Array.from(data.items).map((item) => ({ entry: item.webkitGetAsEntry(), file: item.getAsFile() }));
  const out: Picked[] = [];
  for (const { entry, file } of items) {
    if (entry) await walk(entry, out);
    else if (file && !hidden(file.name)) out.push({ file, path: file.name });
  }
  return out;
}

/** The files of an `<input type="file">` (with `webkitdirectory`, a whole folder). */
export function fromInput(files: FileList | null): Picked[] {
  return Array.from(files ?? [])
    .filter((f) => !f.webkitRelativePath.split("/").some(hidden) && !hidden(f.name))
    .map((file) => ({ file, path: file.webkitRelativePath || file.name }));
}
