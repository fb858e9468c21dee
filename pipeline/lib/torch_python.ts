/** Finding a python3 with PyTorch, for the PyTorch reference (tests/reference/reference.py). */

/**
 * The interpreter to run the reference with, or what is wrong with each candidate:
 * KLAL_PYTHON when set, else the first of python3 on PATH and Debian's /usr/bin/python3
 * (where python3-torch installs) that imports torch and numpy.
 */
export async function findTorchPython(): Promise<{ python: string } | { problems: string[] }> {
  const chosen = Deno.env.get("KLAL_PYTHON");
  const problems: string[] = [];
  for (const python of chosen ? [chosen] : ["python3", "/usr/bin/python3"]) {
    try {
      const out = await new Deno.Command(python, {
        args: ["-c", "import torch, numpy"],
        stdout: "null",
        stderr: "piped",
      }).output();
      if (out.success) return { python };
      const error = new TextDecoder().decode(out.stderr).trim().split("\n").at(-1);
      problems.push(`${python} cannot import torch (${error})`);
    } catch {
      problems.push(`${python} not found`);
    }
  }
  return { problems };
}
