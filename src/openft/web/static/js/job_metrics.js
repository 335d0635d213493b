// Which metrics a job's charts and checkpoint table show, by training method (the names are the ones
// the trainer writes to events and checkpoints: docs/training.md).

const SPLITS = [["train", "train"], ["valid", "valid"], ["full_valid", "full valid"]];

/** The three series (train, rotating valid window, whole validation file) of one metric. */
function splits(name, label) {
  return SPLITS.map(([prefix, words]) => ({ key: `${prefix}_${name}`, label: `${words} ${label}` }));
}

const CHARTS = {
  supervised: [
    ["Loss", splits("loss", "loss")],
    ["Token accuracy", splits("mean_token_accuracy", "token accuracy")],
  ],
  dpo: [
    ["Loss", splits("loss", "loss")],
    ["Reward accuracy", splits("reward_accuracy", "reward accuracy")],
    ["Reward margin", splits("reward_margin", "reward margin")],
    ["Supervised loss (preferred outputs)", splits("sft_loss", "supervised loss")],
  ],
  reinforcement: [
    ["Loss", [{ key: "train_loss", label: "train loss" }]],
    ["Reward", [
      { key: "train_reward_mean", label: "train reward (sampled)" },
      { key: "valid_reward_mean", label: "valid reward (greedy)" },
    ]],
    ["KL to the start", [{ key: "train_kl", label: "train KL" }]],
  ],
};

// Checkpoint table columns: [heading, metric name].
const CHECKPOINT_COLUMNS = {
  supervised: [
    ["Train loss", "train_loss"], ["Valid loss", "valid_loss"], ["Full valid loss", "full_valid_loss"],
    ["Token accuracy", "train_mean_token_accuracy"],
  ],
  dpo: [
    ["Train loss", "train_loss"], ["Full valid loss", "full_valid_loss"],
    ["Full valid reward accuracy", "full_valid_reward_accuracy"], ["Full valid reward margin", "full_valid_reward_margin"],
  ],
  reinforcement: [
    ["Train loss", "train_loss"], ["Train reward", "train_reward_mean"], ["Valid reward", "valid_reward_mean"],
  ],
};

/** [[chart title, series]] for a method; an unknown method gets the supervised charts. */
export function chartsFor(method) {
  return CHARTS[method] || CHARTS.supervised;
}

export function checkpointColumnsFor(method) {
  return CHECKPOINT_COLUMNS[method] || CHECKPOINT_COLUMNS.supervised;
}
