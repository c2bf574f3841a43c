/**
 * The optional LLM judge: a Llama-Guard-style prompt sent to a configured model (edge or
 * origin — the host supplies `complete`), and a parser for its "safe" / "unsafe\nO1,O4" answer.
 * Stock Llama Guard 3 codes (S1…S14) are also understood and mapped onto OpenAI categories.
 */
import { CATEGORIES, type Category } from "./taxonomy.ts";

export interface JudgeRequest {
  /** the texts under review, oldest first, with the role each came from */
  conversation: { role: string; text: string }[];
  /** "input": judge the last user turn; "output": judge the last assistant turn */
  direction: "input" | "output";
  categories: readonly Category[];
}

export interface JudgeVerdict {
  safe: boolean;
  categories: Category[];
  /** the model's raw answer, for logs */
  raw?: string;
}

/** A judge: the pipeline calls it after the rules and the classifier. */
export type JudgeFn = (req: JudgeRequest) => Promise<JudgeVerdict>;

const DESCRIPTIONS: Record<Category, string> = {
  harassment: "Harassment: content that expresses, incites, or promotes harassing language towards any target.",
  "harassment/threatening": "Threatening harassment: harassment that also includes violence or serious harm towards any target.",
  hate: "Hate: content that expresses, incites, or promotes hate based on race, gender, ethnicity, religion, nationality, sexual orientation, disability status, or caste.",
  "hate/threatening": "Threatening hate: hateful content that also includes violence or serious harm towards the targeted group.",
  illicit: "Illicit: content that gives advice or instruction on how to commit illicit acts.",
  "illicit/violent": "Violent illicit: illicit content that also involves violence or the procurement of weapons.",
  "self-harm": "Self-harm: content that promotes, encourages, or depicts acts of self-harm, such as suicide, cutting, and eating disorders.",
  "self-harm/intent": "Self-harm intent: the speaker expresses that they are engaging or intend to engage in acts of self-harm.",
  "self-harm/instructions": "Self-harm instructions: content that encourages self-harm or gives instructions or advice on how to commit such acts.",
  sexual: "Sexual: content meant to arouse sexual excitement, such as the description of sexual activity, or that promotes sexual services (excluding sex education and wellness).",
  "sexual/minors": "Sexual content involving minors: sexual content that includes an individual who is under 18 years old.",
  violence: "Violence: content that depicts death, violence, or physical injury.",
  "violence/graphic": "Graphic violence: content that depicts death, violence, or physical injury in graphic detail.",
};

/** Our codes: O1 … O13 in taxonomy order. */
export function judgeCode(c: Category): string {
  return `O${CATEGORIES.indexOf(c) + 1}`;
}

/** Llama Guard 3's default hazard codes mapped onto the OpenAI taxonomy (codes without a counterpart map to none). */
const LLAMA_GUARD_CODES: Record<string, Category[]> = {
  S1: ["violence", "illicit/violent"],
  S2: ["illicit"],
  S3: ["sexual"],
  S4: ["sexual/minors"],
  S9: ["illicit/violent"],
  S10: ["hate"],
  S11: ["self-harm"],
  S12: ["sexual"],
};

export function llamaGuardPrompt(req: JudgeRequest): string {
  const agent = req.direction === "output" ? "Agent" : "User";
  const cats = req.categories.map((c) => `${judgeCode(c)}: ${DESCRIPTIONS[c]}`).join("\n");
  const convo = req.conversation.map((t) => `${t.role === "assistant" ? "Agent" : "User"}: ${t.text}`).join("\n\n");
  return [
    `Task: Check if there is unsafe content in '${agent}' messages in conversations according to our safety policy with the below categories.`,
    "",
    "<BEGIN UNSAFE CONTENT CATEGORIES>",
    cats,
    "<END UNSAFE CONTENT CATEGORIES>",
    "",
    "<BEGIN CONVERSATION>",
    "",
    convo,
    "",
    "<END CONVERSATION>",
    "",
    `Provide your safety assessment for ONLY THE LAST ${agent} message in the above conversation:`,
    " - First line must read 'safe' or 'unsafe'.",
    " - If unsafe, a second line must include a comma-separated list of violated categories.",
  ].join("\n");
}

/** Parse a Llama-Guard-style answer. Anything that does not start with safe/unsafe throws. */
export function parseJudgeAnswer(answer: string, asked: readonly Category[] = CATEGORIES): JudgeVerdict {
  const lines = answer.trim().split(/\r?\n/).map((l) => l.trim()).filter(Boolean);
  const first = (lines[0] ?? "").toLowerCase().replace(/[^a-z]/g, "");
  if (first === "safe") return { safe: true, categories: [], raw: answer };
  if (first !== "unsafe") throw new Error(`judge: unexpected answer ${JSON.stringify(answer.slice(0, 80))}`);
  const out = new Set<Category>();
  for (const code of (lines[1] ?? "").split(/[,\s]+/).filter(Boolean)) {
    const upper = code.toUpperCase();
    const o = /^O(\d{1,2})$/.exec(upper);
    if (o) {
      const c = CATEGORIES[Number(o[1]) - 1];
      if (c && asked.includes(c)) out.add(c);
    } else {
      for (const c of LLAMA_GUARD_CODES[upper] ?? []) out.add(c);
      if ((CATEGORIES as readonly string[]).includes(code)) out.add(code as Category);
    }
  }
  return { safe: false, categories: [...out], raw: answer };
}

/**
 * A judge backed by any text-completion function (the worker passes one that calls an edge
 * model or an origin, e.g. Llama Guard 3 1B): builds the prompt, calls the model, parses.
 */
export function createPromptJudge(complete: (prompt: string) => Promise<string>): JudgeFn {
  return async (req) => parseJudgeAnswer(await complete(llamaGuardPrompt(req)), req.categories);
}
