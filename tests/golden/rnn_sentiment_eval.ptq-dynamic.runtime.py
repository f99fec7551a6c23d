"""Test a trained sentiment LSTM, tutorial style: module-level code, a hidden state made
by the model's own `init_hidden` (from `next(self.parameters())`) and carried from batch
to batch, predictions rounded from a sigmoid."""

import torch
import torch.nn as nn
from torch.utils.data import DataLoader, TensorDataset
from neural_coder.runtime import quantization
from neural_coder.runtime.config import PostTrainingQuantConfig

SEQ_LEN, BATCH_SIZE = 20, 12


class SentimentRNN(nn.Module):
    def __init__(self, vocab_size, output_size, embedding_dim, hidden_dim, n_layers, drop_prob=0.5):
        super().__init__()
        self.output_size = output_size
        self.n_layers = n_layers
        self.hidden_dim = hidden_dim
        self.embedding = nn.Embedding(vocab_size, embedding_dim)
        self.lstm = nn.LSTM(
            embedding_dim, hidden_dim, n_layers, dropout=drop_prob, batch_first=True
        )
        self.dropout = nn.Dropout(0.3)
        self.fc = nn.Linear(hidden_dim, output_size)
        self.sig = nn.Sigmoid()

    def forward(self, x, hidden):
        batch_size = x.size(0)
        embeds = self.embedding(x)
        lstm_out, hidden = self.lstm(embeds, hidden)
        lstm_out = lstm_out.contiguous().view(-1, self.hidden_dim)
        out = self.fc(self.dropout(lstm_out))
        sig_out = self.sig(out).view(batch_size, -1)
        return sig_out[:, -1], hidden

    def init_hidden(self, batch_size):
        weight = next(self.parameters()).data
        return (
            weight.new(self.n_layers, batch_size, self.hidden_dim).zero_(),
            weight.new(self.n_layers, batch_size, self.hidden_dim).zero_(),
        )


generator = torch.Generator().manual_seed(0)
test_x = torch.randint(1, 300, (60, SEQ_LEN), generator=generator)
test_y = torch.randint(0, 2, (60,), generator=generator)
test_loader = DataLoader(TensorDataset(test_x, test_y), shuffle=False, batch_size=BATCH_SIZE)

net = SentimentRNN(vocab_size=300, output_size=1, embedding_dim=32, hidden_dim=48, n_layers=2)
net.load_state_dict(torch.load("sentiment_rnn.pt"))
quantized_model = quantization.fit(net, PostTrainingQuantConfig(approach="dynamic"))  # neural-coder
net = quantized_model if quantized_model is not None else net  # neural-coder

criterion = nn.BCELoss()
test_losses = []
num_correct = 0
h = net.init_hidden(BATCH_SIZE)
net.eval()
for inputs, labels in test_loader:
    h = tuple([each.data for each in h])
    output, h = net(inputs, h)
    test_loss = criterion(output.squeeze(), labels.float())
    test_losses.append(test_loss.item())
    pred = torch.round(output.squeeze())
    correct_tensor = pred.eq(labels.float().view_as(pred))
    num_correct += int(correct_tensor.sum())

print(f"Test loss: {sum(test_losses) / len(test_losses):.3f}")
print(f"Test accuracy: {num_correct / len(test_loader.dataset):.3f}")
