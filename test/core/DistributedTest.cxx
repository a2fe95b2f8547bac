/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
// Distributed training primitives (agcl/Distributed.h) with real processes on the loopback
// interface. The test program starts copies of itself as ranks (AGCL_DISTRIBUTED_WORKER names
// the scenario, RANK/WORLD_SIZE/MASTER_* as torchrun sets them); each rank writes its results
// to AGCL_DISTRIBUTED_OUT/rank<r>.pt, and the test compares them with one process computing the
// whole batch.
#include "agcl/ConditionalContrastiveLoss.h"
#include "agcl/Distributed.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <string>
#include <thread>
#include <vector>

extern char ** environ;

namespace {

namespace fs = std::filesystem;

// ---------------------------------------------------------------------------------------------
// The scenarios' shared inputs (the same on every rank and in the single-process reference).

constexpr int64_t kGlobalBatch = 8; // 2 ranks x 4
constexpr int     kSteps = 3;

/** A BatchNorm-free network in double precision with fixed weights. */
torch::nn::Sequential
SmallNetwork()
{
  torch::manual_seed(7);
  torch::nn::Sequential net(torch::nn::Linear(6, 8), torch::nn::Tanh(), torch::nn::Linear(8, 3));
  net->to(torch::kDouble);
  return net;
}

/** Step s's global batch: inputs [8, 6] and targets [8, 3]. */
std::pair<torch::Tensor, torch::Tensor>
GlobalBatch(int step)
{
  torch::Generator g = at::detail::createCPUGenerator(100 + step);
  return { torch::randn({ kGlobalBatch, 6 }, g, torch::kDouble), torch::randn({ kGlobalBatch, 3 }, g, torch::kDouble) };
}

/** The contrastive scenario: 12 embeddings' inputs [12, 5] and labels; rank 0 holds 5 rows,
 *  rank 1 the other 7 (different numbers of anchors with positives: labels 3 and 5 occur once). */
constexpr int64_t kRank0Rows = 5;
torch::Tensor
ContrastiveInputs()
{
  torch::Generator g = at::detail::createCPUGenerator(5);
  return torch::randn({ 12, 5 }, g, torch::kDouble);
}
torch::Tensor
ContrastiveLabels()
{
  return torch::tensor(std::vector<int64_t>{ 0, 3, 1, 1, 2, 0, 0, 1, 4, 4, 5, 2 }, torch::kLong);
}
torch::nn::Linear
ContrastiveProjection()
{
  torch::manual_seed(9);
  torch::nn::Linear projection(5, 4);
  projection->to(torch::kDouble);
  return projection;
}
torch::Tensor
Embed(torch::nn::Linear & projection, const torch::Tensor & inputs)
{
  return torch::nn::functional::normalize(projection(inputs), torch::nn::functional::NormalizeFuncOptions().dim(1));
}

// ---------------------------------------------------------------------------------------------
// Worker side.

std::vector<torch::Tensor>
Parameters(torch::nn::Module & module)
{
  return module.parameters();
}

int
RunWorker(const std::string & scenario)
{
  const auto environment = agcl::ReadDistributedEnvironment();
  if (!environment)
  {
    std::cerr << "worker without RANK/WORLD_SIZE" << std::endl;
    return 2;
  }
  const fs::path           out = std::getenv("AGCL_DISTRIBUTED_OUT");
  agcl::DistributedOptions options;
  if (const char * t = std::getenv("AGCL_DISTRIBUTED_TIMEOUT_MS"))
    options.timeout = std::chrono::milliseconds(std::atol(t));
  if (const char * b = std::getenv("AGCL_DISTRIBUTED_BUCKET_BYTES"))
    options.bucketBytes = static_cast<std::size_t>(std::atol(b));
  try
  {
    const auto                 group = agcl::DistributedGroup::Connect(*environment, options);
    const int                  rank = group->Rank();
    std::vector<torch::Tensor> results;
    if (scenario == "equivalence")
    {
      // Data parallel: this rank's share of each step's global batch, gradients averaged.
      auto net = SmallNetwork();
      if (rank == 1)
      {
        torch::NoGradGuard noGrad;
        for (auto & p : net->parameters())
          p.add_(1.0); // a different start: the broadcast must replace it with rank 0's weights
      }
      agcl::BroadcastTensors(net->parameters(), *group);
      torch::optim::AdamW optimizer(net->parameters(), torch::optim::AdamWOptions(0.05).weight_decay(0.01));
      const int64_t       share = kGlobalBatch / group->Size();
      for (int step = 0; step < kSteps; ++step)
      {
        auto [inputs, targets] = GlobalBatch(step);
        inputs = inputs.narrow(0, rank * share, share);
        targets = targets.narrow(0, rank * share, share);
        optimizer.zero_grad();
        const torch::Tensor loss = torch::mse_loss(net->forward(inputs), targets);
        loss.backward();
        agcl::AllReduceGradients(net->parameters(), *group, agcl::Reduction::Mean);
        std::vector<torch::Tensor> global{ loss.detach().clone().reshape({ 1 }) };
        group->AllReduce(global, agcl::Reduction::Mean);
        results.push_back(global[0]);
        if (step == 0)
          for (auto & p : net->parameters())
            results.push_back(p.grad().clone());
        optimizer.step();
      }
      for (auto & p : net->parameters())
        results.push_back(p.detach().clone());
    }
    else if (scenario == "contrastive")
    {
      auto                             projection = ContrastiveProjection();
      const int64_t                    first = rank == 0 ? 0 : kRank0Rows;
      const int64_t                    rows = rank == 0 ? kRank0Rows : 12 - kRank0Rows;
      torch::Tensor                    inputs = ContrastiveInputs().narrow(0, first, rows).clone().requires_grad_(true);
      const torch::Tensor              labels = ContrastiveLabels().narrow(0, first, rows);
      agcl::ConditionalContrastiveLoss loss;
      auto [share, global] = agcl::DistributedContrastiveLoss(loss, Embed(projection, inputs), labels, *group);
      share.backward();
      agcl::AllReduceGradients(projection->parameters(), *group, agcl::Reduction::Sum);
      results = { global.reshape({ 1 }), share.detach().reshape({ 1 }), inputs.grad() };
      for (auto & p : projection->parameters())
        results.push_back(p.grad().clone());
    }
    else if (scenario == "gather")
    {
      // Rows of different counts and a trailing shape; rank r holds r + 2 rows of value r.
      const torch::Tensor local = torch::full({ rank + 2, 2, 3 }, static_cast<double>(rank), torch::kDouble);
      results = { group->AllGather(local) };
      const auto counts = group->AllGatherCounts(rank + 2);
      results.push_back(torch::tensor(counts, torch::kLong));
      const auto traffic = group->TrafficSinceReset();
      results.push_back(torch::tensor({ traffic.allGatherBytes }, torch::kDouble));
    }
    else if (scenario == "dies")
    {
      // Rank 1 leaves without a word; rank 0's next collective must fail within the timeout.
      if (rank == 1)
        std::_Exit(3);
      std::vector<torch::Tensor> t{ torch::ones({ 4 }) };
      group->AllReduce(t);
      return 0; // not expected
    }
    else
    {
      std::cerr << "unknown scenario " << scenario << std::endl;
      return 2;
    }
    torch::save(results, (out / ("rank" + std::to_string(rank) + ".pt")).string());
    return 0;
  }
  catch (const std::exception & error)
  {
    std::cerr << "worker error: " << error.what() << std::endl;
    return 1;
  }
}

// ---------------------------------------------------------------------------------------------
// Launcher side.

/** A TCP port on 127.0.0.1 that was free a moment ago. */
int
FreePort()
{
  const int   s = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = 0;
  bind(s, reinterpret_cast<sockaddr *>(&address), sizeof(address));
  socklen_t length = sizeof(address);
  getsockname(s, reinterpret_cast<sockaddr *>(&address), &length);
  close(s);
  return ntohs(address.sin_port);
}

struct Outcome
{
  std::vector<int>    exitCodes;
  std::vector<double> seconds;
  std::string         stderrText;
};

/** Starts `ranks` copies of this program (ranks 0..ranks-1 of a job of `worldSize`) with the
 *  torchrun-style environment on 127.0.0.1, waits at most `limitSeconds` (then kills them). */
Outcome
Launch(const std::string &                        scenario,
       const fs::path &                           out,
       int                                        ranks,
       int                                        worldSize,
       const std::map<std::string, std::string> & extra = {},
       double                                     limitSeconds = 120)
{
  const int          port = FreePort();
  std::string        self = fs::read_symlink("/proc/self/exe").string();
  std::vector<pid_t> pids;
  const auto         start = std::chrono::steady_clock::now();
  for (int r = 0; r < ranks; ++r)
  {
    std::map<std::string, std::string> vars{ { "AGCL_DISTRIBUTED_WORKER", scenario },
                                             { "AGCL_DISTRIBUTED_OUT", out.string() },
                                             { "RANK", std::to_string(r) },
                                             { "WORLD_SIZE", std::to_string(worldSize) },
                                             { "LOCAL_RANK", std::to_string(r) },
                                             { "LOCAL_WORLD_SIZE", std::to_string(worldSize) },
                                             { "MASTER_ADDR", "127.0.0.1" },
                                             { "MASTER_PORT", std::to_string(port) },
                                             { "OMP_NUM_THREADS", "1" } };
    for (const auto & [k, v] : extra)
      vars[k] = v;
    std::vector<std::string> text;
    for (char ** e = environ; *e; ++e)
    {
      const std::string entry = *e;
      if (!vars.count(entry.substr(0, entry.find('='))))
        text.push_back(entry);
    }
    for (const auto & [k, v] : vars)
      text.push_back(k + "=" + v);
    std::vector<char *> envp;
    for (auto & t : text)
      envp.push_back(t.data());
    envp.push_back(nullptr);
    const std::string          errFile = (out / ("stderr" + std::to_string(r) + ".txt")).string();
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 2, errFile.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    char *    argv[] = { self.data(), nullptr };
    pid_t     pid = 0;
    const int status = posix_spawn(&pid, self.c_str(), &actions, nullptr, argv, envp.data());
    posix_spawn_file_actions_destroy(&actions);
    EXPECT_EQ(status, 0) << "posix_spawn";
    pids.push_back(pid);
  }
  Outcome outcome;
  outcome.exitCodes.assign(pids.size(), -1);
  outcome.seconds.assign(pids.size(), -1);
  size_t left = pids.size();
  while (left > 0)
  {
    for (size_t i = 0; i < pids.size(); ++i)
    {
      if (outcome.exitCodes[i] != -1)
        continue;
      int status = 0;
      if (waitpid(pids[i], &status, WNOHANG) == pids[i])
      {
        outcome.exitCodes[i] = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        outcome.seconds[i] = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        --left;
      }
    }
    if (std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() > limitSeconds)
    {
      for (size_t i = 0; i < pids.size(); ++i)
        if (outcome.exitCodes[i] == -1)
        {
          kill(pids[i], SIGKILL);
          waitpid(pids[i], nullptr, 0);
          outcome.exitCodes[i] = 999; // hung
        }
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  for (int r = 0; r < ranks; ++r)
  {
    std::ifstream in(out / ("stderr" + std::to_string(r) + ".txt"));
    outcome.stderrText += "[rank " + std::to_string(r) + "] " +
                          std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()) + "\n";
  }
  return outcome;
}

class DistributedTest : public ::testing::Test
{
protected:
  void
  SetUp() override
  {
    if (!agcl::DistributedAvailable())
      GTEST_SKIP() << "built without c10d/Gloo";
    m_Out = fs::temp_directory_path() / ("agcl-distributed-" + std::to_string(getpid()) + "-" +
                                         ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(m_Out);
    fs::create_directories(m_Out);
  }
  void
  TearDown() override
  {
    if (!m_Out.empty())
      fs::remove_all(m_Out);
  }
  std::vector<torch::Tensor>
  Results(int rank) const
  {
    std::vector<torch::Tensor> tensors;
    torch::load(tensors, (m_Out / ("rank" + std::to_string(rank) + ".pt")).string());
    return tensors;
  }
  fs::path m_Out;
};

double
RelativeDifference(const torch::Tensor & a, const torch::Tensor & b)
{
  return ((a - b).abs().max() / b.abs().max().clamp_min(1e-300)).item<double>();
}

TEST_F(DistributedTest, TwoRanksGiveOneProcessWithTheWholeBatch)
{
  // Reference: one process, the whole batch of 8, the same network, optimizer and steps.
  auto                       net = SmallNetwork();
  torch::optim::AdamW        optimizer(net->parameters(), torch::optim::AdamWOptions(0.05).weight_decay(0.01));
  std::vector<double>        losses;
  std::vector<torch::Tensor> gradients;
  for (int step = 0; step < kSteps; ++step)
  {
    const auto [inputs, targets] = GlobalBatch(step);
    optimizer.zero_grad();
    const torch::Tensor loss = torch::mse_loss(net->forward(inputs), targets);
    loss.backward();
    losses.push_back(loss.item<double>());
    if (step == 0)
      for (auto & p : net->parameters())
        gradients.push_back(p.grad().clone());
    optimizer.step();
  }
  // Small buckets: the 4 parameters travel in several all-reduces.
  const Outcome outcome = Launch("equivalence", m_Out, 2, 2, { { "AGCL_DISTRIBUTED_BUCKET_BYTES", "200" } });
  ASSERT_EQ(outcome.exitCodes, (std::vector<int>{ 0, 0 })) << outcome.stderrText;
  const auto rank0 = Results(0), rank1 = Results(1);
  const auto parameters = net->parameters();
  ASSERT_EQ(rank0.size(), kSteps + 2 * parameters.size());
  size_t at = 0;
  for (int step = 0; step < kSteps; ++step)
  {
    EXPECT_LT(std::abs(rank0[at].item<double>() - losses[step]) / losses[step], 1e-12) << "step " << step;
    ++at;
    if (step == 0)
      for (size_t k = 0; k < parameters.size(); ++k, ++at)
        EXPECT_LT(RelativeDifference(rank0[at], gradients[k]), 1e-6) << "gradient " << k;
  }
  for (size_t k = 0; k < parameters.size(); ++k, ++at)
  {
    EXPECT_LT(RelativeDifference(rank0[at], parameters[k].detach()), 1e-6) << "weight " << k;
    EXPECT_TRUE(torch::equal(rank0[at], rank1[at])) << "ranks' weights differ: parameter " << k;
  }
}

TEST_F(DistributedTest, ContrastiveLossWithGatheredNegativesEqualsTheConcatenatedBatch)
{
  auto                             projection = ContrastiveProjection();
  torch::Tensor                    inputs = ContrastiveInputs().requires_grad_(true);
  agcl::ConditionalContrastiveLoss loss;
  const torch::Tensor              value = loss(Embed(projection, inputs), ContrastiveLabels());
  value.backward();

  const Outcome outcome = Launch("contrastive", m_Out, 2, 2);
  ASSERT_EQ(outcome.exitCodes, (std::vector<int>{ 0, 0 })) << outcome.stderrText;
  const auto rank0 = Results(0), rank1 = Results(1);
  // The global loss on both ranks, the shares summing to it.
  EXPECT_LT(std::abs(rank0[0].item<double>() - value.item<double>()) / value.item<double>(), 1e-12);
  EXPECT_EQ(rank0[0].item<double>(), rank1[0].item<double>());
  EXPECT_LT(std::abs(rank0[1].item<double>() + rank1[1].item<double>() - value.item<double>()), 1e-12);
  EXPECT_NE(rank0[1].item<double>(), rank1[1].item<double>()); // the ranks' anchors differ
  // Each rank's input rows get the gradient of the whole loss.
  EXPECT_LT(RelativeDifference(torch::cat({ rank0[2], rank1[2] }), inputs.grad()), 1e-6);
  const auto parameters = projection->parameters();
  for (size_t k = 0; k < parameters.size(); ++k)
  {
    EXPECT_LT(RelativeDifference(rank0[3 + k], parameters[k].grad()), 1e-6) << "parameter " << k;
    EXPECT_TRUE(torch::equal(rank0[3 + k], rank1[3 + k]));
  }
}

TEST_F(DistributedTest, AllGatherOfDifferentRowCountsInRankOrder)
{
  const Outcome outcome = Launch("gather", m_Out, 2, 2);
  ASSERT_EQ(outcome.exitCodes, (std::vector<int>{ 0, 0 })) << outcome.stderrText;
  for (int r = 0; r < 2; ++r)
  {
    const auto          results = Results(r);
    const torch::Tensor expected =
      torch::cat({ torch::zeros({ 2, 2, 3 }, torch::kDouble), torch::ones({ 3, 2, 3 }, torch::kDouble) });
    EXPECT_TRUE(torch::equal(results[0], expected)) << "rank " << r;
    EXPECT_TRUE(torch::equal(results[1], torch::tensor(std::vector<int64_t>{ 2, 3 }, torch::kLong)));
    // Bytes: two count gathers (2 x 8 bytes each) and the rows padded to 3 (2 x 3 x 6 x 8 bytes).
    EXPECT_DOUBLE_EQ(results[2].item<double>(), 2 * 16 + 2 * 3 * 6 * 8);
  }
}

TEST_F(DistributedTest, ARankThatDiesEndsTheOtherWithinTheTimeout)
{
  const Outcome outcome = Launch("dies", m_Out, 2, 2, { { "AGCL_DISTRIBUTED_TIMEOUT_MS", "5000" } }, 60);
  EXPECT_EQ(outcome.exitCodes[1], 3);
  EXPECT_EQ(outcome.exitCodes[0], 1) << outcome.stderrText; // an error, not a hang (999) or success
  EXPECT_LT(outcome.seconds[0], 30.0);
  EXPECT_NE(outcome.stderrText.find("rank 0 of 2"), std::string::npos) << outcome.stderrText;
}

TEST_F(DistributedTest, ARendezvousThatCannotCompleteEndsWithinTheTimeout)
{
  // Only rank 0 of 2 comes.
  const Outcome outcome = Launch("gather", m_Out, 1, 2, { { "AGCL_DISTRIBUTED_TIMEOUT_MS", "3000" } }, 60);
  EXPECT_EQ(outcome.exitCodes[0], 1) << outcome.stderrText;
  EXPECT_LT(outcome.seconds[0], 30.0);
  EXPECT_NE(outcome.stderrText.find("rank 0 of 2"), std::string::npos) << outcome.stderrText;
}

TEST(DistributedEnvironment, StandardVariablesAreReadAndCheckedByName)
{
  auto from = [](std::map<std::string, std::string> vars) {
    return agcl::ReadDistributedEnvironment([vars](const std::string & name) -> std::optional<std::string> {
      const auto found = vars.find(name);
      return found == vars.end() ? std::nullopt : std::optional<std::string>(found->second);
    });
  };
  EXPECT_FALSE(from({}).has_value()); // one process, as today
  const auto e = from({ { "RANK", "3" },
                        { "WORLD_SIZE", "4" },
                        { "LOCAL_RANK", "1" },
                        { "LOCAL_WORLD_SIZE", "2" },
                        { "MASTER_ADDR", "node7" },
                        { "MASTER_PORT", "29500" },
                        { "TORCHELASTIC_USE_AGENT_STORE", "True" } });
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->rank, 3);
  EXPECT_EQ(e->worldSize, 4);
  EXPECT_EQ(e->localRank, 1);
  EXPECT_EQ(e->localWorldSize, 2);
  EXPECT_EQ(e->masterAddress, "node7");
  EXPECT_EQ(e->masterPort, 29500);
  EXPECT_TRUE(e->agentStore);
  // LOCAL_* default to the global values (one machine).
  const auto single = from({ { "RANK", "1" }, { "WORLD_SIZE", "2" }, { "MASTER_ADDR", "h" }, { "MASTER_PORT", "1" } });
  EXPECT_EQ(single->localRank, 1);
  EXPECT_EQ(single->localWorldSize, 2);
  EXPECT_FALSE(single->agentStore);

  auto message = [&](std::map<std::string, std::string> vars) {
    try
    {
      from(vars);
    }
    catch (const std::invalid_argument & error)
    {
      return std::string(error.what());
    }
    return std::string("no exception");
  };
  const std::map<std::string, std::string> good{
    { "RANK", "0" }, { "WORLD_SIZE", "2" }, { "MASTER_ADDR", "127.0.0.1" }, { "MASTER_PORT", "29500" }
  };
  auto with = [&](const std::string & k, const std::string & v) {
    auto vars = good;
    if (v == "<unset>")
      vars.erase(k);
    else
      vars[k] = v;
    return message(vars);
  };
  EXPECT_NE(with("RANK", "2").find("RANK='2'"), std::string::npos);
  EXPECT_NE(with("RANK", "-1").find("RANK"), std::string::npos);
  EXPECT_NE(with("RANK", "one").find("RANK='one'"), std::string::npos);
  EXPECT_NE(with("RANK", "<unset>").find("RANK"), std::string::npos);
  EXPECT_NE(with("WORLD_SIZE", "0").find("WORLD_SIZE='0'"), std::string::npos);
  EXPECT_NE(with("WORLD_SIZE", "2x").find("WORLD_SIZE"), std::string::npos);
  EXPECT_NE(with("MASTER_ADDR", "<unset>").find("MASTER_ADDR"), std::string::npos);
  EXPECT_NE(with("MASTER_PORT", "<unset>").find("MASTER_PORT"), std::string::npos);
  EXPECT_NE(with("MASTER_PORT", "70000").find("MASTER_PORT='70000'"), std::string::npos);
  EXPECT_NE(with("LOCAL_WORLD_SIZE", "3").find("LOCAL_WORLD_SIZE='3'"), std::string::npos);
  EXPECT_NE(with("LOCAL_RANK", "2").find("LOCAL_RANK='2'"), std::string::npos);
  EXPECT_NE(with("TORCHELASTIC_USE_AGENT_STORE", "maybe").find("TORCHELASTIC_USE_AGENT_STORE"), std::string::npos);

  EXPECT_EQ(agcl::ThreadsPerRank(16, 4), 4);
  EXPECT_EQ(agcl::ThreadsPerRank(2, 2), 1);
  EXPECT_EQ(agcl::ThreadsPerRank(2, 4), 1);
  EXPECT_EQ(agcl::ThreadsPerRank(0, 1), 1);
}

TEST(DistributedGroup, OneRankOfOneIsTheSingleProcessWithoutCommunication)
{
  agcl::DistributedEnvironment one;
  const auto                   group = agcl::DistributedGroup::Connect(one);
  EXPECT_EQ(group->Size(), 1);
  torch::Tensor       x = torch::arange(6, torch::kDouble).reshape({ 3, 2 }).requires_grad_(true);
  const torch::Tensor gathered = agcl::AllGatherWithGradient(x, *group);
  EXPECT_TRUE(torch::equal(gathered, x));
  std::vector<torch::Tensor> t{ torch::ones({ 3 }) };
  group->AllReduce(t, agcl::Reduction::Mean);
  EXPECT_TRUE(torch::equal(t[0], torch::ones({ 3 })));
  EXPECT_EQ(group->TrafficSinceReset().allReduceBytes, 0.0);
  agcl::DistributedOptions bad;
  bad.backend = "mpi";
  EXPECT_THROW(agcl::DistributedGroup::Connect(one, bad), std::invalid_argument);
  bad.backend = "gloo";
  bad.timeout = std::chrono::milliseconds(0);
  EXPECT_THROW(agcl::DistributedGroup::Connect(one, bad), std::invalid_argument);
}

} // namespace

int
main(int argc, char ** argv)
{
  if (const char * scenario = std::getenv("AGCL_DISTRIBUTED_WORKER"))
    return RunWorker(scenario);
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
