export async function checkCommand(_o: { json?: boolean }): Promise<number> { return 0; }
