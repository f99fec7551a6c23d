"""REINFORCE on a tiny hand-written environment (no gym): the model is a module-level
policy that select_action() samples from, the loss is built from the log-probs it saved,
and the episode loop stops once the running reward passes a threshold."""
import argparse
from itertools import count
from types import SimpleNamespace

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.optim as optim
from torch.distributions import Categorical

parser = argparse.ArgumentParser(description='PyTorch REINFORCE example')
parser.add_argument('--gamma', type=float, default=0.99, metavar='G')
parser.add_argument('--seed', type=int, default=543, metavar='N')
parser.add_argument('--log-interval', type=int, default=5, metavar='N')
args = parser.parse_args()


class LineWorld:
    """Walk on a line: reward 1 per step until the agent leaves [-5, 5] or 30 steps pass."""

    def __init__(self, seed):
        self.rng = np.random.default_rng(seed)
        self.spec = SimpleNamespace(reward_threshold=15.0)

    def reset(self):
        self.pos = 0.0
        self.t = 0
        return self._obs(), {}

    def _obs(self):
        return np.array([self.pos / 5.0, self.t / 30.0, 1.0, self.rng.normal() * 0.1], dtype=np.float32)

    def step(self, action):
        self.pos += 1.0 if action == 1 else -1.0
        self.pos += self.rng.normal() * 0.3
        self.t += 1
        terminated = abs(self.pos) > 5
        truncated = self.t >= 30
        return self._obs(), 1.0, terminated, truncated, {}


env = LineWorld(args.seed)
torch.manual_seed(args.seed)


class Policy(nn.Module):
    def __init__(self):
        super().__init__()
        self.affine1 = nn.Linear(4, 32)
        self.dropout = nn.Dropout(p=0.6)
        self.affine2 = nn.Linear(32, 2)

        self.saved_log_probs = []
        self.rewards = []

    def forward(self, x):
        x = self.affine1(x)
        x = self.dropout(x)
        x = F.relu(x)
        action_scores = self.affine2(x)
        return F.softmax(action_scores, dim=1)


policy = Policy()
optimizer = optim.Adam(policy.parameters(), lr=1e-2)
eps = np.finfo(np.float32).eps.item()


def select_action(state):
    state = torch.from_numpy(state).float().unsqueeze(0)
    probs = policy(state)
    m = Categorical(probs)
    action = m.sample()
    policy.saved_log_probs.append(m.log_prob(action))
    return action.item()


def finish_episode():
    R = 0
    policy_loss = []
    returns = []
    for r in policy.rewards[::-1]:
        R = r + args.gamma * R
        returns.insert(0, R)
    returns = torch.tensor(returns)
    returns = (returns - returns.mean()) / (returns.std() + eps)
    for log_prob, R in zip(policy.saved_log_probs, returns):
        policy_loss.append(-log_prob * R)
    optimizer.zero_grad()
    policy_loss = torch.cat(policy_loss).sum()
    policy_loss.backward()
    optimizer.step()
    del policy.rewards[:]
    del policy.saved_log_probs[:]


def main():
    running_reward = 10
    for i_episode in count(1):
        state, _ = env.reset()
        ep_reward = 0
        for t in range(1, 10000):
            action = select_action(state)
            state, reward, done, _, _ = env.step(action)
            policy.rewards.append(reward)
            ep_reward += reward
            if done or env.t >= 30:
                break

        running_reward = 0.05 * ep_reward + (1 - 0.05) * running_reward
        finish_episode()
        if i_episode % args.log_interval == 0:
            print(f'Episode {i_episode}\tLast reward: {ep_reward:.2f}\tAverage reward: {running_reward:.2f}')
        if running_reward > env.spec.reward_threshold:
            print(f"Solved! Running reward is now {running_reward} and "
                  f"the last episode runs to {t} time steps!")
            break
    torch.save(policy.state_dict(), "policy.pt")
    print('saved policy', type(policy).__name__)


if __name__ == '__main__':
    main()
