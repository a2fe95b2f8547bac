/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
#ifndef agcl_apps_EvaluationCsv_h
#define agcl_apps_EvaluationCsv_h

// An evaluation CSV of agcl evaluate as agcl compare reads it (also the fuzz target
// test/fuzz/FuzzEvaluationCsv.cxx). Errors are InputError naming the file and the line.

#include "Manifest.h"
#include "Subcommands.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <map>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace agcl::cli {

// (subject, organ) -> (volume -> Dice), for the rows with a Dice value; organs in file order.
struct Evaluation
{
  std::map<std::pair<std::string, std::string>, std::map<std::string, double>> dice;
  std::vector<std::string>                                                     organs;
};

inline Evaluation
ReadEvaluation(const std::string & file)
{
  std::ifstream in(file);
  if (!in)
  {
    throw InputError("'" + file + "': cannot read the file");
  }
  std::string line;
  std::getline(in, line);
  const auto header = SplitCsvLine(line);
  auto       column = [&](const char * name) {
    const auto it = std::find(header.begin(), header.end(), name);
    if (it == header.end())
      throw InputError("'" + file + "': no '" + name + "' column; expected a CSV written by agcl evaluate");
    return static_cast<size_t>(it - header.begin());
  };
  const size_t subject = column("subject"), image = column("image"), organ = column("organ"), dice = column("dice");
  Evaluation   evaluation;
  for (int number = 2; std::getline(in, line); ++number)
  {
    const auto cells = SplitCsvLine(line);
    if (cells.size() <= std::max({ subject, image, organ, dice }))
      throw InputError("'" + file + "', line " + std::to_string(number) + ": too few fields");
    if (std::find(evaluation.organs.begin(), evaluation.organs.end(), cells[organ]) == evaluation.organs.end())
      evaluation.organs.push_back(cells[organ]);
    if (cells[dice].empty())
      continue; // both empty: no Dice
    double value = 0.0;
    try
    {
      size_t used = 0;
      value = std::stod(cells[dice], &used);
      if (used != cells[dice].size() || !std::isfinite(value))
        throw std::invalid_argument("trailing text");
    }
    catch (const std::exception &)
    {
      throw InputError("'" + file + "', line " + std::to_string(number) + ": dice '" + cells[dice] +
                       "' is not a number");
    }
    // A second row for the same (subject, organ, image) would silently replace the first.
    if (!evaluation.dice[{ cells[subject], cells[organ] }].emplace(cells[image], value).second)
      throw InputError("'" + file + "', line " + std::to_string(number) + ": a second row for subject '" +
                       cells[subject] + "', organ '" + cells[organ] + "', image '" + cells[image] + "'");
  }
  return evaluation;
}

} // namespace agcl::cli

#endif
