/**
 * What a prompt needs of a ComfyUI server before it can run there. The workflow layer
 * computes it from an API prompt; the scheduler compares it with each backend.
 *
 * @module
 */

/** What a prompt needs of a backend: its node classes and the model files it loads. */
export interface PromptRequirements {
  /** Every distinct `class_type` in the API prompt. */
  classTypes: string[];
  /** Model files by input name (`ckpt_name`, `lora_name`, `vae_name`, ...). */
  models: { input: string; name: string; nodeId: string }[];
}
