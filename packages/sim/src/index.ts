export { SimError, SimErrorCode, isSimError, type SimIssue } from './errors.js';
export {
  SimTruncateMode,
  applyProfilePatch,
  parseProfile,
  simProfileSchema,
  type SimJudgeSettings,
  type SimOutputTokens,
  type SimProfile,
  type SimProfileInput,
  type SimProfilePatch,
  type SimTtft,
} from './profile.js';
export { SimProfileName, isSimProfileName, profiles, resolveProfile } from './profiles.js';
export { createSimServer, type SimArrival, type SimLogger, type SimServer, type SimServerOptions } from './sim-server.js';
export type { SimArrivalSecond, SimStats } from './stats.js';
export { SIM_FAULT_HEADER, SIM_FAULT_NONE, SimFault, drawFault, simFaults } from './faults.js';
export { SimFinishReason, planCompletion, type SimCompletion } from './completion.js';
export {
  chatRequestSchema,
  maxTokensOf,
  messageText,
  parseChatRequest,
  promptOf,
  promptTokensOf,
  type ChatRequestParseResult,
  type SimChatMessage,
  type SimChatRequest,
} from './chat-request.js';
export { answerSeed, answerWords, perturbOneWord, type SimAnswerSeed } from './answer-text.js';
export {
  SimVerdictWinner,
  extractJudgedPair,
  judgeVerdict,
  type SimJudgedPair,
  type SimVerdict,
} from './judge.js';
export { planToolCall, toolCallTokens, type SimToolCallPlan } from './tool-call.js';
export { decodeMs, sampleTtftMs } from './latency.js';
export { countTokens, splitWords } from './tokens.js';
export { hashToUint32, hashToUnit, mulberry32, seededRandom, type RandomSource } from './random.js';
export { vocabulary } from './vocabulary.js';
export { OpenAiErrorType, type OpenAiErrorBody } from './openai-format.js';
export {
  SIM_CLI_DEFAULT_PORT,
  parseSimArgs,
  runSimCli,
  simCliHelp,
  type SimCliArgs,
  type SimCliIo,
} from './cli.js';
