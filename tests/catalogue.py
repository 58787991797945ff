"""Answers graded by the autograder tests: realistic mistakes and right answers written another way.

A variant replaces some answer cells of the reference solution. Every test cell
must then score full marks except those in `expected`, which score as given;
`message` is a phrase the failing test cell's error must contain, so the
student learns what went wrong.
"""

from collections.abc import Callable
from dataclasses import dataclass, field

from course.samples import TYPICAL_MISTAKES


@dataclass
class Variant:
    name: str
    answers: dict
    expected: dict = field(default_factory=dict)
    message: str = ""
    edit: Callable | None = None  # changes the filled notebook further, e.g. its metadata
    files: dict = field(default_factory=dict)  # extra files in the submission folder (see hostile.plant_files)

    @property
    def is_right(self):
        return not self.expected


# The demo's typical student makes some of these mistakes; the catalogue grades the same code.
TYPICAL = TYPICAL_MISTAKES["logistic_regression"]
TYPICAL_FROM_SCRATCH = TYPICAL_MISTAKES["logistic_regression_from_scratch"]

PRINT_COEFFICIENTS = """
print("Coefficient:", calculated_coefficients)
print("Intercept:", intercept)"""

PRINT_PROBABILITIES = """
for hours, probability in zip(guessed_hours.ravel(), np.ravel(passed_predictions)):
    print(f"{hours:5.1f} hours studied: P(pass) = {probability:.3f}")"""

PRINT_ACCURACY = """
print(f"Test accuracy: {accuracy_2:.3f}")"""

LOGISTIC_REGRESSION = [
    # ---- realistic mistakes: each loses the points of its own exercise only ----
    Variant(
        "guessed_scaled_with_own_statistics",
        {"scale_hours": TYPICAL["scale_hours"]},
        {"test_scale_hours_guessed": 0},
        "own mean and standard deviation",
    ),
    Variant(
        "min_max_scaling",
        {
            "scale_hours": "from sklearn.preprocessing import MinMaxScaler\n"
            "scaler = MinMaxScaler().fit(hours_studied)\n"
            "hours_studied_scaled = scaler.transform(hours_studied)\n"
            "guessed_hours_scaled = scaler.transform(guessed_hours)"
        },
        {"test_scale_hours": 0},
        "min-max scaling",
    ),
    Variant(
        "no_scaling",
        {"scale_hours": "hours_studied_scaled = hours_studied\nguessed_hours_scaled = guessed_hours"},
        {"test_scale_hours": 0, "test_scale_hours_guessed": 0},
        "equals the raw",
    ),
    Variant(
        "model_fitted_on_raw_hours",
        {"fit_hours_model": "model = LogisticRegression().fit(hours_studied, passed_exam)"},
        {"test_fit_hours_model": 0},
        "fitted on the raw hours_studied",
    ),
    Variant(
        "model_with_non_default_C",
        {"fit_hours_model": "model = LogisticRegression(C=100).fit(hours_studied_scaled, passed_exam)"},
        {"test_fit_hours_model": 0},
        "C=100",
    ),
    Variant(
        "coefficient_and_intercept_swapped",
        {"coefficients": "calculated_coefficients = model.intercept_\nintercept = model.coef_" + PRINT_COEFFICIENTS},
        {"test_coefficients": 0},
        "swapped",
    ),
    Variant(
        "labels_instead_of_probabilities",
        {"pass_probabilities": "passed_predictions = model.predict(guessed_hours_scaled)" + PRINT_PROBABILITIES},
        {"test_pass_probabilities": 0},
        "use predict_proba",
    ),
    Variant(
        "probability_of_failing",
        {"pass_probabilities": TYPICAL["pass_probabilities"]},
        {"test_pass_probabilities": 0},
        "column 0",
    ),
    Variant(
        "both_probability_columns",
        {"pass_probabilities": "passed_predictions = model.predict_proba(guessed_hours_scaled)"},
        {"test_pass_probabilities": 0},
        "two columns",
    ),
    Variant(
        "probabilities_of_raw_guessed_hours",
        {"pass_probabilities": "passed_predictions = model.predict_proba(guessed_hours)[:, 1]" + PRINT_PROBABILITIES},
        {"test_pass_probabilities": 0},
        "raw guessed_hours",
    ),
    Variant(
        "sigmoid_sign_error",
        {"sigmoid": "def sigmoid(z):\n    return 1 / (1 + np.exp(z))"},
        {"test_sigmoid": 0},
        "sign",
    ),
    Variant("sigmoid_only_for_scalars", {"sigmoid": TYPICAL["sigmoid"]}, {"test_sigmoid": 0}, "use np.exp"),
    Variant(
        "exam_scaler_fitted_on_test_set",
        {
            "scale_exam_features": "exam_features_scaled_train = StandardScaler().fit_transform(exam_features_train)\n"
            "exam_features_scaled_test = StandardScaler().fit_transform(exam_features_test)"
        },
        {"test_scale_exam_features": 0},
        "test set's own statistics",
    ),
    Variant(
        "exam_scaler_fitted_on_all_data",
        {
            "scale_exam_features": "exam_scaler = StandardScaler().fit(\n"
            "    np.vstack([exam_features_train, exam_features_test]))\n"
            "exam_features_scaled_train = exam_scaler.transform(exam_features_train)\n"
            "exam_features_scaled_test = exam_scaler.transform(exam_features_test)"
        },
        {"test_scale_exam_features": 0},
        "training and test data together",
    ),
    Variant(
        "exam_features_not_scaled",
        {
            "scale_exam_features": "exam_features_scaled_train = exam_features_train\n"
            "exam_features_scaled_test = exam_features_test"
        },
        {"test_scale_exam_features": 0},
        "equals the raw features",
    ),
    Variant(
        "exam_model_trained_on_test_set",
        {"fit_exam_model": "model_2 = LogisticRegression().fit(exam_features_scaled_test, passed_exam_2_test)"},
        {"test_fit_exam_model": 0},
        "trained on the test set",
    ),
    Variant(
        "exam_model_fitted_on_raw_features",
        {"fit_exam_model": "model_2 = LogisticRegression().fit(exam_features_train, passed_exam_2_train)"},
        {"test_fit_exam_model": 0},
        "raw training features",
    ),
    Variant(
        "predicted_the_training_set",
        {
            "predict_exam": "passed_predictions_2 = model_2.predict(exam_features_scaled_train)",
            "accuracy": "accuracy_2 = model_2.score(exam_features_scaled_test, passed_exam_2_test)" + PRINT_ACCURACY,
        },
        {"test_predict_exam": 0},
        "one per training student",
    ),
    Variant(
        "predicted_probabilities_not_classes",
        {
            "predict_exam": "passed_predictions_2 = model_2.predict_proba(exam_features_scaled_test)[:, 1]",
            "accuracy": "accuracy_2 = model_2.score(exam_features_scaled_test, passed_exam_2_test)" + PRINT_ACCURACY,
        },
        {"test_predict_exam": 0},
        "not predict_proba",
    ),
    Variant("accuracy_as_percentage", {"accuracy": TYPICAL["accuracy"]}, {"test_accuracy": 0}, "percentage"),
    Variant(
        "accuracy_as_error_rate",
        {"accuracy": "accuracy_2 = np.mean(passed_predictions_2 != passed_exam_2_test)" + PRINT_ACCURACY},
        {"test_accuracy": 0},
        "error rate",
    ),
    Variant(
        "accuracy_on_training_set",
        {"accuracy": "accuracy_2 = model_2.score(exam_features_scaled_train, passed_exam_2_train)" + PRINT_ACCURACY},
        {"test_accuracy": 0},
        "training set",
    ),
    Variant(
        "probabilities_rounded",
        {
            "pass_probabilities": "passed_predictions = np.round(model.predict_proba(guessed_hours_scaled)[:, 1], 3)"
            + PRINT_PROBABILITIES
        },
        {"test_pass_probabilities": 0},
        "don't round",
    ),
    Variant(
        "accuracy_rounded",
        {"accuracy": "accuracy_2 = round(np.mean(passed_predictions_2 == passed_exam_2_test), 3)" + PRINT_ACCURACY},
        {"test_accuracy": 0},
        "don't round",
    ),
    Variant(
        "accuracy_rounded_through_a_string",
        {
            "accuracy": "accuracy_2 = float(f'{model_2.score(exam_features_scaled_test, passed_exam_2_test):.2f}')"
            + PRINT_ACCURACY
        },
        {"test_accuracy": 0},
        "don't round",
    ),
    Variant(
        "decision_boundary_sign_error",
        {
            "decision_boundary": "def decision_boundary(x1):\n"
            "    (w1, w2), b = model_2.coef_[0], model_2.intercept_[0]\n"
            "    return (w1 * x1 + b) / w2"
        },
        {"test_decision_boundary": 0},
        "Check the signs",
    ),
    # ---- right answers written another way: full marks ----
    Variant(
        "manual_z_score",
        {
            "scale_hours": "mean, sd = hours_studied.mean(), hours_studied.std()\n"
            "hours_studied_scaled = (hours_studied - mean) / sd\n"
            "guessed_hours_scaled = (guessed_hours - mean) / sd"
        },
    ),
    Variant(
        "z_score_with_sample_standard_deviation",
        {
            "scale_hours": "mean, sd = hours_studied.mean(), hours_studied.std(ddof=1)\n"
            "hours_studied_scaled = (hours_studied - mean) / sd\n"
            "guessed_hours_scaled = (guessed_hours - mean) / sd"
        },
    ),
    Variant(
        "fit_transform_then_transform",
        {
            "scale_hours": "scaler = StandardScaler()\n"
            "hours_studied_scaled = scaler.fit_transform(hours_studied)\n"
            "guessed_hours_scaled = scaler.transform(guessed_hours)",
            "scale_exam_features": "exam_scaler = StandardScaler()\n"
            "exam_features_scaled_train = exam_scaler.fit_transform(exam_features_train)\n"
            "exam_features_scaled_test = exam_scaler.transform(exam_features_test)",
        },
    ),
    Variant(
        "fit_with_warning_and_more_iterations",
        # A column-vector y raises a DataConversionWarning in the answer cell; the fit is the same.
        {
            "fit_hours_model": "model = LogisticRegression(max_iter=1000)\n"
            "model.fit(hours_studied_scaled, passed_exam.reshape(-1, 1))"
        },
    ),
    Variant(
        "explicit_l2_penalty_with_future_warning",
        # penalty="l2" is the default, deprecated since scikit-learn 1.8: a FutureWarning, same fit.
        {
            "fit_exam_model": "model_2 = LogisticRegression(penalty='l2').fit(exam_features_scaled_train, "
            "passed_exam_2_train)\nprint('Coefficients (hours, math courses):', model_2.coef_[0])"
        },
    ),
    Variant(
        "exploration_with_convergence_warning",
        # An unconverged exploratory fit warns; the answer itself is right.
        {
            "fit_hours_model": "LogisticRegression(max_iter=1).fit(hours_studied * 60, passed_exam)\n"
            "model = LogisticRegression().fit(hours_studied_scaled, passed_exam)"
        },
    ),
    Variant(
        "coefficients_as_numbers",
        {
            "coefficients": "calculated_coefficients = model.coef_[0]\nintercept = model.intercept_[0]"
            + PRINT_COEFFICIENTS
        },
    ),
    Variant(
        "probabilities_from_sigmoid_formula_as_column",
        {
            "pass_probabilities": "scores = guessed_hours_scaled @ model.coef_.T + model.intercept_\n"
            "passed_predictions = 1 / (1 + np.exp(-scores))" + PRINT_PROBABILITIES
        },
    ),
    Variant(
        "probabilities_as_list",
        {
            "pass_probabilities": "passed_predictions = [row[1] for row in model.predict_proba(guessed_hours_scaled)]"
            + PRINT_PROBABILITIES
        },
    ),
    Variant(
        "sigmoid_from_scipy", {"sigmoid": "from scipy.special import expit\n\ndef sigmoid(z):\n    return expit(z)"}
    ),
    Variant(
        "sigmoid_numerically_stable",
        {"sigmoid": "def sigmoid(z):\n    return np.exp(-np.logaddexp(0, -np.asarray(z, dtype=float)))"},
    ),
    Variant(
        "classes_from_threshold",
        {
            "predict_exam": "probabilities = model_2.predict_proba(exam_features_scaled_test)[:, 1]\n"
            "passed_predictions_2 = (probabilities > 0.5).astype(int)"
        },
    ),
    Variant(
        "accuracy_score",
        {
            "accuracy": "from sklearn.metrics import accuracy_score\n"
            "accuracy_2 = accuracy_score(passed_exam_2_test, passed_predictions_2)" + PRINT_ACCURACY
        },
    ),
    Variant(
        "accuracy_from_score",
        {"accuracy": "accuracy_2 = model_2.score(exam_features_scaled_test, passed_exam_2_test)" + PRINT_ACCURACY},
    ),
    Variant(
        "decision_boundary_other_form",
        {
            "decision_boundary": "def decision_boundary(x1):\n"
            "    w = model_2.coef_.ravel()\n"
            "    return (-model_2.intercept_[0] - w[0] * x1) / w[1]"
        },
    ),
]

GD_LOOP = """\
def gradient_descent(X, y, learning_rate, n_iterations):
    w, b = np.zeros(X.shape[1]), 0.0
    history = []
{loop}
    return w, b, history"""

STEP = """\
        dw, db = gradient(X, y, w, b)
        w, b = w - learning_rate * dw, b - learning_rate * db
        history.append(log_loss(y, sigmoid(X @ w + b)))"""

FROM_SCRATCH = [
    # ---- realistic mistakes ----
    Variant(
        "sigmoid_sign_error",
        {"sigmoid": "def sigmoid(z):\n    return 1 / (1 + np.exp(z))"},
        {"test_sigmoid": 0},
        "check the sign",
    ),
    Variant(
        "loss_summed_not_averaged", {"log_loss": TYPICAL_FROM_SCRATCH["log_loss"]}, {"test_log_loss": 0}, "divide by n"
    ),
    Variant(
        "loss_without_minus_sign",
        {
            "log_loss": "def log_loss(y, p):\n    p = np.clip(p, 1e-15, 1 - 1e-15)\n"
            "    return np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))"
        },
        {"test_log_loss": 0},
        "minus sign",
    ),
    Variant(
        "loss_in_base_10",
        {
            "log_loss": "def log_loss(y, p):\n    p = np.clip(p, 1e-15, 1 - 1e-15)\n"
            "    return -np.mean(y * np.log10(p) + (1 - y) * np.log10(1 - p))"
        },
        {"test_log_loss": 0},
        "natural logs",
    ),
    Variant(
        "loss_not_clipped",
        {"log_loss": "def log_loss(y, p):\n    return -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))"},
        {"test_log_loss": 0},
        "clip p",
    ),
    Variant(
        "gradient_sign_error",
        {
            "gradient": "def gradient(X, y, w, b):\n    error = y - sigmoid(X @ w + b)\n"
            "    return X.T @ error / len(y), np.mean(error)"
        },
        {"test_gradient": 0},
        "wrong sign",
    ),
    Variant(
        "gradient_without_1_over_n",
        {
            "gradient": "def gradient(X, y, w, b):\n    error = sigmoid(X @ w + b) - y\n"
            "    return X.T @ error, np.sum(error)"
        },
        {"test_gradient": 0},
        "divide by n",
    ),
    Variant(
        "gradient_forgets_intercept",
        {
            "gradient": "def gradient(X, y, w, b):\n    error = sigmoid(X @ w) - y\n"
            "    return X.T @ error / len(y), np.mean(error)"
        },
        {"test_gradient": 0},
        "ignores the intercept",
    ),
    Variant(
        "descent_ignores_n_iterations",
        {"gradient_descent": GD_LOOP.format(loop="    for _ in range(100):\n" + STEP)},
        {"test_gradient_descent": 0, "test_gradient_descent_history": 0},
        "n_iterations",
    ),
    Variant(
        "descent_never_updates_intercept",
        {
            "gradient_descent": GD_LOOP.format(
                loop="    for _ in range(n_iterations):\n"
                + STEP.replace("w, b = w - learning_rate * dw, b - learning_rate * db", "w = w - learning_rate * dw")
            )
        },
        {"test_gradient_descent": 0},
        "update the intercept",
    ),
    Variant(
        "descent_records_only_the_final_loss",
        {
            "gradient_descent": GD_LOOP.format(
                loop="    for _ in range(n_iterations):\n"
                + STEP.replace("        history.append", "    history = []\n    history.append")
            )
        },
        {"test_gradient_descent_history": 0},
        "one loss per iteration",
    ),
    Variant(
        "threshold_with_greater_or_equal",
        {"predict_class": TYPICAL_FROM_SCRATCH["predict_class"]},
        {"test_predict_class": 0},
        "use >, not >=",
    ),
    Variant(
        "threshold_argument_ignored",
        {
            "predict_class": "def predict_class(probabilities, threshold=0.5):\n"
            "    return (np.asarray(probabilities) > 0.5).astype(int)"
        },
        {"test_predict_class": 0},
        "ignores its threshold",
    ),
    Variant(
        "accuracy_on_training_set",
        {
            "fit_course_data": "w_scratch, b_scratch, loss_history = gradient_descent(X_train, y_train, 0.5, 2000)\n"
            "test_accuracy_scratch = np.mean(predict_class(sigmoid(X_train @ w_scratch + b_scratch)) == y_train)"
        },
        {"test_fit_course_data": 0},
        "with y_test",
    ),
    # The text asks for numpy only, the fixed ε = 1e-15, no loop over the students, the loss after
    # each step and an integer array: each is tested, with a message.
    Variant(
        "sigmoid_from_scipy",
        {"sigmoid": "from scipy.special import expit\n\ndef sigmoid(z):\n    return expit(z)"},
        {"test_sigmoid": 0},
        "use numpy only",
    ),
    Variant(
        "sigmoid_is_scipy_expit",
        {"sigmoid": "from scipy.special import expit as sigmoid"},
        {"test_sigmoid": 0},
        "use numpy only",
    ),
    Variant(
        "loss_from_sklearn",
        {
            "log_loss": "from sklearn.metrics import log_loss as sklearn_log_loss\n\n"
            "def log_loss(y, p):\n    return sklearn_log_loss(y, p)"
        },
        {"test_log_loss": 0},
        "scikit-learn's log_loss",
    ),
    Variant(
        "loss_from_sklearn_after_own_clipping",
        {
            "log_loss": "import sklearn.metrics\n\ndef log_loss(y, p):\n"
            "    return sklearn.metrics.log_loss(y, np.clip(p, 1e-15, 1 - 1e-15), labels=[0, 1])"
        },
        {"test_log_loss": 0},
        "numpy only",
    ),
    Variant(
        "loss_with_epsilon_1e_7",
        {
            "log_loss": "def log_loss(y, p):\n    p = np.clip(p, 1e-7, 1 - 1e-7)\n"
            "    return -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))"
        },
        {"test_log_loss": 0},
        "as if you clipped at ε = 1.0e-07",
    ),
    Variant(
        "loss_with_where_and_other_epsilon",
        {
            "log_loss": "def log_loss(y, p):\n    p = np.clip(np.asarray(p, dtype=float), 1e-12, 1 - 1e-12)\n"
            "    return float(np.mean(np.where(y == 1, -np.log(p), -np.log(1 - p))))"
        },
        {"test_log_loss": 0},
        "with exactly this ε",
    ),
    Variant(
        "loss_with_loop_over_students",
        {
            "log_loss": "def log_loss(y, p):\n    total = 0.0\n"
            "    for y_i, p_i in zip(y, np.clip(p, 1e-15, 1 - 1e-15)):\n"
            "        total -= y_i * np.log(p_i) + (1 - y_i) * np.log(1 - p_i)\n"
            "    return total / len(y)"
        },
        {"test_log_loss": 0},
        "loops over the students",
    ),
    Variant(
        "loop_over_students_in_gradient",
        {
            "gradient": "def gradient(X, y, w, b):\n    dw, db = np.zeros_like(w, dtype=float), 0.0\n"
            "    for x_i, y_i in zip(X, y):\n        error = sigmoid(x_i @ w + b) - y_i\n"
            "        dw += x_i * error\n        db += error\n"
            "    return dw / len(y), db / len(y)"
        },
        {"test_gradient": 0},
        "loops over the students",
    ),
    Variant(
        "comprehension_over_students_in_gradient",
        {
            "gradient": "def gradient(X, y, w, b):\n"
            "    errors = np.array([sigmoid(x_i @ w + b) - y_i for x_i, y_i in zip(X, y)])\n"
            "    return X.T @ errors / len(y), errors.mean()"
        },
        {"test_gradient": 0},
        "loops over the students",
    ),
    Variant(
        "descent_records_loss_before_step",
        {
            "gradient_descent": "def gradient_descent(X, y, learning_rate, n_iterations):\n"
            "    w, b = np.zeros(X.shape[1]), 0.0\n"
            "    history = np.empty(n_iterations)\n"
            "    for i in range(n_iterations):\n"
            "        history[i] = log_loss(y, sigmoid(X @ w + b))\n"
            "        dw, db = gradient(X, y, w, b)\n"
            "        w -= learning_rate * dw\n"
            "        b -= learning_rate * db\n"
            "    return w, b, history"
        },
        {"test_gradient_descent_history": 0},
        "append the loss after each step",
    ),
    Variant(
        "descent_records_start_and_every_step",
        # Lesson 2's old convention, n + 1 losses: the length check names it.
        {
            "gradient_descent": GD_LOOP.format(
                loop="    history.append(log_loss(y, sigmoid(X @ w + b)))\n    for _ in range(n_iterations):\n" + STEP
            )
        },
        {"test_gradient_descent_history": 0},
        "one loss per iteration",
    ),
    Variant(
        "predict_class_returns_booleans",
        {
            "predict_class": "def predict_class(probabilities, threshold=0.5):\n"
            "    return np.asarray(probabilities) > threshold"
        },
        {"test_predict_class": 0},
        "integers 0 and 1",
    ),
    # ---- right answers written another way ----
    Variant(
        "loss_with_where",
        {
            "log_loss": "def log_loss(y, p):\n    p = np.clip(np.asarray(p, dtype=float), 1e-15, 1 - 1e-15)\n"
            "    return float(np.mean(np.where(y == 1, -np.log(p), -np.log(1 - p))))"
        },
    ),
    Variant(
        "loss_with_maximum_on_both_logs",
        {
            "log_loss": "EPS = 1e-15\n\ndef log_loss(y, p):\n"
            "    return -np.mean(y * np.log(np.maximum(p, EPS)) + (1 - y) * np.log(np.maximum(1 - p, EPS)))"
        },
    ),
    Variant(
        "gradient_with_broadcasting",
        {
            "gradient": "def gradient(X, y, w, b):\n    error = sigmoid(X.dot(w) + b) - y\n"
            "    return (X * error[:, None]).mean(axis=0), error.mean()"
        },
    ),
    Variant(
        "descent_with_history_array",
        {
            "gradient_descent": "def gradient_descent(X, y, learning_rate, n_iterations):\n"
            "    w, b = np.zeros(X.shape[1]), 0.0\n"
            "    history = np.empty(n_iterations)\n"
            "    for i in range(n_iterations):\n"
            "        dw, db = gradient(X, y, w, b)\n"
            "        w -= learning_rate * dw\n"
            "        b -= learning_rate * db\n"
            "        history[i] = log_loss(y, sigmoid(X @ w + b))\n"
            "    return w, b, history"
        },
    ),
    Variant(
        "gradient_with_db_of_shape_1",
        # db = np.mean(..., keepdims=True) is an array of shape (1,); so is b, and b_scratch, after it.
        {
            "gradient": "def gradient(X, y, w, b):\n    error = sigmoid(X @ w + b) - y\n"
            "    return X.T @ error / len(y), np.mean(error, keepdims=True)"
        },
    ),
    Variant(
        "descent_with_b_of_shape_1",
        {
            "gradient_descent": GD_LOOP.format(loop="    for _ in range(n_iterations):\n" + STEP).replace(
                "w, b = np.zeros(X.shape[1]), 0.0", "w, b = np.zeros(X.shape[1]), np.zeros(1)"
            )
        },
    ),
    Variant(
        "predict_class_with_where",
        {
            "predict_class": "def predict_class(probabilities, threshold=0.5):\n"
            "    return np.where(np.asarray(probabilities) > threshold, 1, 0)"
        },
    ),
    Variant(
        "predict_class_by_multiplying",
        {
            "predict_class": "def predict_class(probabilities, threshold=0.5):\n"
            "    return (np.asarray(probabilities) > threshold) * 1"
        },
    ),
    Variant(
        "accuracy_with_sklearn_metric",
        {
            "fit_course_data": "from sklearn.metrics import accuracy_score\n"
            "w_scratch, b_scratch, loss_history = gradient_descent(X_train, y_train, 0.5, 2000)\n"
            "test_accuracy_scratch = accuracy_score(y_test, predict_class(sigmoid(X_test @ w_scratch + b_scratch)))"
        },
    ),
    Variant(
        "wrong_gradient_carried_forward",
        # The gradient loses its points; descent and fit built on it are judged by their own logic.
        {
            "gradient": "def gradient(X, y, w, b):\n    error = sigmoid(X @ w + b) - y\n"
            "    return X.T @ error / len(y) * 2, np.mean(error) * 2"
        },
        {"test_gradient": 0},
        "dw should be",
    ),
    Variant(
        "sigmoid_numerically_stable",
        {"sigmoid": "def sigmoid(z):\n    return np.exp(-np.logaddexp(0, -np.asarray(z, dtype=float)))"},
    ),
]

TYPICAL_EVALUATION = TYPICAL_MISTAKES["logistic_regression_evaluation"]

PIPELINE_TAIL = """
pipeline_model = pipeline[-1]  # the fitted LogisticRegression at the end of your pipeline
print(pipeline)"""

PRINT_C = """
for C, loss in zip(C_GRID, np.ravel(cv_log_loss)):
    print(f"C = {C:4}: cross-validated log-loss {loss:.4f}")
print("chosen C:", best_C)"""

REFERENCE_SEARCH = """\
search = GridSearchCV(make_pipeline(StandardScaler(), LogisticRegression()),
                      param_grid={"logisticregression__C": C_GRID}, scoring="neg_log_loss", cv=cv)
search.fit(X_train, y_train)
cv_log_loss = -search.cv_results_["mean_test_score"]
"""

REFIT = "\nbest_model = make_pipeline(StandardScaler(), LogisticRegression(C=best_C)).fit(X_train, y_train)"

CV_PROBABILITIES = """\
cv_probabilities = cross_val_predict(make_pipeline(StandardScaler(), LogisticRegression(C=best_C)),
                                     X_train, y_train, cv=cv, method="predict_proba")[:, 1]
"""

PRINT_THRESHOLD = """
print(f"chosen threshold: {threshold:.2f}")"""

GRID_THRESHOLD = """\
cv_recall = np.array([recall_score(y_train, cv_probabilities >= t) for t in THRESHOLDS])
threshold = THRESHOLDS[cv_recall >= RECALL_TARGET].max()"""

PRINT_BRIER = """
print(f"Brier score {brier:.4f}; always predicting the base rate: {brier_baseline:.4f}")"""

BASELINE = "\nbrier_baseline = brier_score_loss(y_test, np.full(len(y_test), y_train.mean()))"

LOGISTIC_REGRESSION_EVALUATION = [
    # ---- realistic mistakes: each loses the points of its own exercise only ----
    Variant(
        "scaler_fitted_on_all_data_outside_the_pipeline",
        {
            "pipeline": "scaler = StandardScaler().fit(np.vstack([X_train, X_test]))\n"
            "pipeline = make_pipeline(LogisticRegression()).fit(scaler.transform(X_train), y_train)" + PIPELINE_TAIL
        },
        {"test_pipeline": 0},
        "leakage",
    ),
    Variant(
        "pipeline_without_scaler",
        {"pipeline": "pipeline = make_pipeline(LogisticRegression()).fit(X_train, y_train)" + PIPELINE_TAIL},
        {"test_pipeline": 0},
        "raw features",
    ),
    Variant(
        "pipeline_with_min_max_scaler",
        {
            "pipeline": "from sklearn.preprocessing import MinMaxScaler\n"
            "pipeline = make_pipeline(MinMaxScaler(), LogisticRegression()).fit(X_train, y_train)" + PIPELINE_TAIL
        },
        {"test_pipeline": 0},
        "should scale with a StandardScaler",
    ),
    Variant(
        "positive_class_swapped_in_the_fit",
        {
            "pipeline": "pipeline = make_pipeline(StandardScaler(), LogisticRegression())\n"
            "pipeline.fit(X_train, 1 - y_train)" + PIPELINE_TAIL
        },
        {"test_pipeline": 0},
        "benign as class 1",
    ),
    Variant(
        "pipeline_fitted_on_test_set",
        {
            "pipeline": "pipeline = make_pipeline(StandardScaler(), LogisticRegression()).fit(X_test, y_test)"
            + PIPELINE_TAIL
        },
        {"test_pipeline": 0},
        "fitted on the test set",
    ),
    Variant(
        "scaled_before_cross_validation",
        {
            "choose_C": "X_train_scaled = StandardScaler().fit_transform(X_train)\n"
            "search = GridSearchCV(LogisticRegression(), param_grid={'C': C_GRID}, "
            "scoring='neg_log_loss', cv=cv)\n"
            "search.fit(X_train_scaled, y_train)\n"
            "cv_log_loss = -search.cv_results_['mean_test_score']\n"
            "best_C = search.best_params_['C']" + REFIT + PRINT_C
        },
        {"test_cv_log_loss": 0},
        "leakage",
    ),
    Variant(
        "cv_log_loss_left_negative",
        {
            "choose_C": REFERENCE_SEARCH.replace("cv_log_loss = -search", "cv_log_loss = search")
            + "best_C = search.best_params_['logisticregression__C']\n"
            "best_model = search.best_estimator_" + PRINT_C
        },
        {"test_cv_log_loss": 0},
        "negative",
    ),
    Variant(
        "grid_search_scored_by_accuracy",
        {
            "choose_C": REFERENCE_SEARCH.replace(' scoring="neg_log_loss",', "")
            + "best_C = search.best_params_['logisticregression__C']\n"
            "best_model = search.best_estimator_" + PRINT_C
        },
        {"test_cv_log_loss": 0, "test_best_C": 0},
        "scoring='neg_log_loss'",
    ),
    Variant(
        "cross_validated_on_default_folds",
        {
            "choose_C": REFERENCE_SEARCH.replace("cv=cv)", "cv=5)")
            + "best_C = search.best_params_['logisticregression__C']\n"
            "best_model = search.best_estimator_" + PRINT_C
        },
        {"test_cv_log_loss": 0},
        "pass cv=cv",
    ),
    Variant(
        "C_with_the_highest_log_loss",
        {"choose_C": REFERENCE_SEARCH + "best_C = C_GRID[int(np.argmax(cv_log_loss))]" + REFIT + PRINT_C},
        {"test_best_C": 0},
        "highest cross-validated log-loss",
    ),
    Variant(
        "C_chosen_on_the_test_set",
        {
            "choose_C": "from sklearn.metrics import log_loss\n"
            + REFERENCE_SEARCH
            + "test_loss = [log_loss(y_test, make_pipeline(StandardScaler(), LogisticRegression(C=C))"
            ".fit(X_train, y_train).predict_proba(X_test)) for C in C_GRID]\n"
            "best_C = C_GRID[int(np.argmin(test_loss))]" + REFIT + PRINT_C
        },
        {"test_best_C": 0},
        "does best on the test set",
    ),
    Variant(
        "confusion_matrix_as_a_list",
        {
            "confusion": "test_predictions = best_model.predict(X_test)\n"
            "confusion = confusion_matrix(y_test, test_predictions).tolist()\nprint(confusion)"
        },
        {"test_confusion": 0},
        "2 x 2 numpy array",
    ),
    Variant(
        "confusion_matrix_transposed",
        {"confusion": TYPICAL_EVALUATION["confusion"]},
        {"test_confusion": 0},
        "transposed",
    ),
    Variant(
        "confusion_matrix_with_labels_1_0",
        {
            "confusion": "test_predictions = best_model.predict(X_test)\n"
            "confusion = confusion_matrix(y_test, test_predictions, labels=[1, 0])\nprint(confusion)"
        },
        {"test_confusion": 0},
        "order 1, 0",
    ),
    Variant(
        "predictions_from_probability_of_benign",
        {
            "confusion": "test_predictions = (best_model.predict_proba(X_test)[:, 0] > 0.5).astype(int)\n"
            "confusion = confusion_matrix(y_test, test_predictions)\nprint(confusion)"
        },
        {"test_confusion": 0},
        "column 0 of predict_proba",
    ),
    Variant(
        "precision_and_recall_swapped",
        {
            "precision_recall": "precision = recall_score(y_test, test_predictions)\n"
            "recall = precision_score(y_test, test_predictions)\n"
            'print(f"precision {precision:.3f}, recall {recall:.3f}")'
        },
        {"test_precision_recall": 0},
        "swapped",
    ),
    Variant(
        "precision_and_recall_of_benign",
        {
            "precision_recall": "precision = precision_score(y_test, test_predictions, pos_label=0)\n"
            "recall = recall_score(y_test, test_predictions, pos_label=0)\n"
            'print(f"precision {precision:.3f}, recall {recall:.3f}")'
        },
        {"test_precision_recall": 0},
        "benign class",
    ),
    Variant(
        "auc_from_predicted_classes",
        {
            "auc": "test_probabilities = best_model.predict_proba(X_test)[:, 1]\n"
            "test_auc = roc_auc_score(y_test, test_predictions)\n"
            'print(f"test ROC AUC: {test_auc:.4f}")'
        },
        {"test_auc": 0},
        "predicted classes",
    ),
    Variant(
        "predict_where_probabilities_are_needed",
        {
            "auc": "test_probabilities = best_model.predict(X_test)\n"
            "test_auc = roc_auc_score(y_test, test_probabilities)\n"
            'print(f"test ROC AUC: {test_auc:.4f}")'
        },
        {"test_test_probabilities": 0},
        "use predict_proba",
    ),
    Variant(
        "probability_of_benign",
        {
            "auc": "test_probabilities = best_model.predict_proba(X_test)[:, 0]\n"
            "test_auc = roc_auc_score(y_test, test_probabilities)\n"
            'print(f"test ROC AUC: {test_auc:.4f}")'
        },
        {"test_test_probabilities": 0},
        "column 0",
    ),
    Variant(
        "threshold_tuned_on_the_test_set",
        {"threshold": TYPICAL_EVALUATION["threshold"]},
        {"test_threshold": 0},
        "tuned on the test set",
    ),
    Variant(
        "threshold_from_in_sample_probabilities",
        {
            "threshold": "cv_probabilities = best_model.predict_proba(X_train)[:, 1]\n"
            + GRID_THRESHOLD
            + PRINT_THRESHOLD
        },
        {"test_cv_probabilities": 0},
        "not cross-validated",
    ),
    Variant(
        "smallest_threshold_reaching_the_recall",
        {"threshold": CV_PROBABILITIES + GRID_THRESHOLD.replace(".max()", ".min()") + PRINT_THRESHOLD},
        {"test_threshold": 0},
        "smallest threshold",
    ),
    Variant(
        "brier_of_predicted_classes", {"brier": TYPICAL_EVALUATION["brier"]}, {"test_brier": 0}, "predicted classes"
    ),
    Variant(
        "brier_of_probability_of_benign",
        {"brier": "brier = brier_score_loss(y_test, best_model.predict_proba(X_test)[:, 0])" + BASELINE + PRINT_BRIER},
        {"test_brier": 0},
        "P(benign)",
    ),
    Variant(
        "brier_baseline_of_one_half",
        {
            "brier": "brier = brier_score_loss(y_test, test_probabilities)\n"
            "brier_baseline = brier_score_loss(y_test, np.full(len(y_test), 0.5))" + PRINT_BRIER
        },
        {"test_brier_baseline": 0},
        "0.25",
    ),
    # ---- right answers written another way: full marks ----
    Variant(
        "pipeline_with_named_steps",
        {
            "pipeline": "from sklearn.pipeline import Pipeline\n"
            "pipeline = Pipeline([('scale', StandardScaler()), ('model', LogisticRegression())])\n"
            "pipeline.fit(X_train, y_train)" + PIPELINE_TAIL
        },
    ),
    Variant(
        "C_by_cross_val_score_loop",
        {
            "choose_C": "from sklearn.model_selection import cross_val_score\n"
            "cv_log_loss = np.array([-cross_val_score(make_pipeline(StandardScaler(), "
            "LogisticRegression(C=C)), X_train, y_train, cv=cv, scoring='neg_log_loss').mean() "
            "for C in C_GRID])\n"
            "best_C = C_GRID[int(np.argmin(cv_log_loss))]" + REFIT + PRINT_C
        },
    ),
    Variant(
        "confusion_counted_by_hand",
        {
            "confusion": "test_predictions = (best_model.predict_proba(X_test)[:, 1] > 0.5).astype(int)\n"
            "confusion = np.array([[np.sum((y_test == t) & (test_predictions == p)) for p in (0, 1)]\n"
            "                      for t in (0, 1)])\nprint(confusion)"
        },
    ),
    Variant(
        "precision_and_recall_from_the_confusion_matrix",
        {
            "precision_recall": "tn, fp, fn, tp = confusion.ravel()\n"
            "precision = tp / (tp + fp)\nrecall = tp / (tp + fn)\n"
            'print(f"precision {precision:.3f}, recall {recall:.3f}")'
        },
    ),
    Variant(
        "auc_from_the_roc_curve",
        {
            "auc": "from sklearn.metrics import auc\n"
            "test_probabilities = best_model.predict_proba(X_test)[:, list(best_model.classes_).index(1)]\n"
            "fpr, tpr, _ = roc_curve(y_test, test_probabilities)\n"
            "test_auc = auc(fpr, tpr)\n"
            'print(f"test ROC AUC: {test_auc:.4f}")'
        },
    ),
    Variant(
        "auc_from_the_decision_function",
        # The decision function ranks the masses as the probabilities do: the same AUC.
        {
            "auc": "test_probabilities = best_model.predict_proba(X_test)[:, 1]\n"
            "test_auc = roc_auc_score(y_test, best_model.decision_function(X_test))\n"
            'print(f"test ROC AUC: {test_auc:.4f}")'
        },
    ),
    Variant(
        "exact_threshold_from_sorted_probabilities",
        {
            "threshold": CV_PROBABILITIES + "caught = np.sort(cv_probabilities[y_train == 1])[::-1]\n"
            "threshold = caught[int(np.ceil(RECALL_TARGET * len(caught))) - 1]" + PRINT_THRESHOLD
        },
    ),
    Variant(
        "threshold_from_best_model_and_numpy_recall",
        {
            "threshold": "cv_probabilities = cross_val_predict(best_model, X_train, y_train, cv=cv, "
            "method='predict_proba')[:, 1]\n"
            "cv_recall = np.array([np.mean(cv_probabilities[y_train == 1] >= t) for t in THRESHOLDS])\n"
            "threshold = THRESHOLDS[cv_recall >= RECALL_TARGET].max()" + PRINT_THRESHOLD
        },
    ),
    Variant(
        "brier_by_hand_and_base_rate_formula",
        {
            "brier": "brier = np.mean((test_probabilities - y_test) ** 2)\n"
            "base_rate = y_train.mean()\nbrier_baseline = base_rate * (1 - base_rate)" + PRINT_BRIER
        },
    ),
]

CATALOGUES = {
    "logistic_regression": LOGISTIC_REGRESSION,
    "logistic_regression_from_scratch": FROM_SCRATCH,
    "logistic_regression_evaluation": LOGISTIC_REGRESSION_EVALUATION,
}
