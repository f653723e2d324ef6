// A data table with a caption and column headers (screen readers announce both).
import type { ComponentChildren } from "preact";

export function Table(props: { caption: string; headers: string[]; children: ComponentChildren; id?: string }) {
  return (
    <div class="table-wrap">
      <table id={props.id}>
        <caption>{props.caption}</caption>
        <thead>
          <tr>
            {props.headers.map((h) => (
              <th scope="col">{h}</th>
            ))}
          </tr>
        </thead>
        <tbody>{props.children}</tbody>
      </table>
    </div>
  );
}
