// The REST API client: bearer token on every request, JSON in and out, and errors as data — a failed
// call throws an ApiError carrying the problem+json `detail` the API wrote for the user.

export class ApiError extends Error {
  constructor(status, detail, problem = null) {
    super(detail);
    this.status = status; // 0: the API could not be reached
    this.detail = detail;
    this.problem = problem;
  }
}

export class Api {
  constructor(base, token) {
    this.base = base.replace(/\/$/, "");
    this.token = token;
  }

  async request(method, path, { params, body } = {}) {
    const query = params ? `?${new URLSearchParams(Object.entries(params).filter(([, v]) => v !== undefined && v !== null))}` : "";
    const headers = { Authorization: `Bearer ${this.token}`, Accept: "application/json, application/problem+json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    let response;
    try {
      response = await fetch(this.base + path + query, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        cache: "no-store",
        credentials: "omit",
      });
    } catch (error) {
      throw new ApiError(0, `cannot reach the API (${error.message})`);
    }
    const text = await response.text();
    let data = null;
    try {
      data = text ? JSON.parse(text) : null;
    } catch {
      data = null;
    }
    if (!response.ok) {
      const detail = data && typeof data.detail === "string" ? data.detail : `${response.status} ${response.statusText}`;
      const id = data && data.request_id ? ` (request id ${data.request_id})` : "";
      throw new ApiError(response.status, `${detail}${response.status >= 500 ? id : ""}`, data);
    }
    return data;
  }

  get(path, params) {
    return this.request("GET", path, { params });
  }

  post(path, body) {
    return this.request("POST", path, { body });
  }
}
