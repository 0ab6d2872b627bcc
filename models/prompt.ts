/** Prompt pieces every model call shares. */

/**
 * Wraps outside text (emails, documents, memories, a goal's input) so the
 * model can tell it from instructions, and so the text cannot close the
 * wrapper itself. The instructions of every prompt say what the wrapper means.
 */
export const untrusted = (text: string): string =>
  `<untrusted>\n${text.replace(/<\/?untrusted>/gi, '[tag removed]')}\n</untrusted>`;
